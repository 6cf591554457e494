"""The egress proxy's hop alone, on the host: what it adds to a GET, and its CPU per request (issue #14).

``bench_egress.py`` times the whole path from inside a sandbox; this takes the sandbox out. A loopback origin
(``sandlot.testing.origin``) serves N bytes; a ``SandboxProxy`` serves a host port in a process of its own, on
uvloop as ``sandlot serve`` runs it; the client (urllib, here) GETs the bytes directly and through each proxy
in turns, so a busy spell on a shared host falls on all of them. ``--src`` runs one proxy per source tree
given (another checkout's ``src``, to compare two proxies in the same minutes); by default the one importable
here. The proxy's CPU per request is read from its ``/proc/PID/schedstat``.

    python3 scripts/contained.py python3 benchmarks/bench_egress_hop.py [--src DIR ...] [--n 300] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

import sandlot

PROXY = """
import asyncio, socket, sys, uvloop
from sandlot.egress import EgressSettings, Policy, SandboxProxy

async def main() -> None:
    settings = EgressSettings(allow=(f"127.0.0.1:{sys.argv[1]}",), max_connections=1 << 30, max_bytes=1 << 60)
    proxy = SandboxProxy(Policy.parse(settings.allow), settings)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.setblocking(False)
    await proxy.serve(listener)
    print(listener.getsockname()[1], flush=True)
    while True:  # a run's records, taken as the engine takes them after each run
        await asyncio.sleep(0.5)
        proxy.take_records()

uvloop.run(main())
"""
ORIGIN = """
import sys
from sandlot.testing.origin import Origin
with Origin() as origin:
    print(origin.port, flush=True)
    sys.stdin.read()
"""
SIZES = (1, 1 << 20)


def start(code: str, src: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": src})
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def cpu_ns(process: subprocess.Popen[str]) -> int:
    with open(f"/proc/{process.pid}/schedstat") as f:
        return int(f.read().split()[0])


def measure(n: int, sources: list[str]) -> dict[str, Any]:
    here = os.path.dirname(os.path.dirname(os.path.abspath(sandlot.__file__)))
    origin, origin_port = start(ORIGIN, here)
    proxies: dict[str, tuple[subprocess.Popen[str], int]] = {}
    try:
        for src in sources:
            proxies[src] = start(PROXY, src, str(origin_port))
        openers = {"direct": urllib.request.build_opener(urllib.request.ProxyHandler({}))}
        for src, (_, port) in proxies.items():
            openers[src] = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"}))
        out: dict[str, Any] = {}
        for size in SIZES:
            url = f"http://127.0.0.1:{origin_port}/bytes/{size}"
            for opener in openers.values():  # warm: imports, the origin's threads, the proxies' spare pipes
                for _ in range(5):
                    opener.open(url).read()
            times: dict[str, list[float]] = {name: [] for name in openers}
            cpu: dict[str, int] = {}
            before = {src: cpu_ns(process) for src, (process, _) in proxies.items()}
            for _ in range(n):
                for name, opener in openers.items():
                    started = time.perf_counter()
                    data = opener.open(url).read()
                    times[name].append((time.perf_counter() - started) * 1000)
                    assert len(data) == size
            cpu = {src: cpu_ns(process) - before[src] for src, (process, _) in proxies.items()}
            direct = statistics.median(times["direct"])
            out[str(size)] = {"direct_ms": direct, "proxies": {
                src: {"ms": statistics.median(times[src]), "added_ms": statistics.median(times[src]) - direct,
                      "cpu_us_per_request": cpu[src] / n / 1000} for src in proxies}}
        return out
    finally:
        for process, _ in proxies.values():
            process.kill()
            process.wait()
        assert origin.stdin is not None
        origin.stdin.close()
        origin.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", metavar="DIR",
                        help="A source tree whose proxy to time (repeatable).  [default: the sandlot importable here]")
    parser.add_argument("--n", type=int, default=300, help="GETs of each size per client.  [default: 300]")
    parser.add_argument("--json", help="Also write the figures to this file.")
    args = parser.parse_args()
    sources = [os.path.abspath(s) for s in args.src] if args.src else [
        os.path.dirname(os.path.dirname(os.path.abspath(sandlot.__file__)))]
    out = measure(args.n, sources)
    for size, row in out.items():
        print(f"{int(size):>8} B, median of {args.n}: direct {row['direct_ms']:.2f} ms")
        for src, figures in row["proxies"].items():
            print(f"          through {src}: {figures['ms']:.2f} ms, {figures['added_ms']:+.2f} ms; "
                  f"the proxy's CPU {figures['cpu_us_per_request']:.0f} us a request")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
