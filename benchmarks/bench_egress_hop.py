"""The egress proxy's hop alone, on the host: what it adds to a GET, and its CPU per request (issue #14).

``bench_egress.py`` times the whole path from inside a sandbox; this takes the sandbox out. A loopback origin
(``sandlot.testing.origin``) serves N bytes; a ``SandboxProxy`` serves a host port in a process of its own, on
uvloop as ``sandlot serve`` runs it; the client (urllib, here) GETs the bytes directly and through each proxy
in turns, so a busy spell on a shared host falls on all of them. ``--src`` runs one proxy per source tree
given (another checkout's ``src``, to compare two proxies in the same minutes); by default the one importable
here. The proxy's CPU per request is read from its ``/proc/PID/schedstat``. Where ``haproxy`` is installed
(Debian's package), one more arm: the same GET through haproxy as a plain TCP hop (``mode tcp``, splicing), in C,
with no HTTP parsing and no policy: not a proxy sandlot could use, but a floor under what any second hop costs here.

    python3 scripts/contained.py python3 benchmarks/bench_egress_hop.py [--src DIR ...] [--n 300] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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
HAPROXY = "haproxy (a TCP hop in C)"
HAPROXY_CONFIG = """global
  nbthread 1
defaults
  mode tcp
  option splice-auto
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend hop
  bind 127.0.0.1:{port}
  default_backend origin
backend origin
  server origin 127.0.0.1:{origin_port}
"""


def start_haproxy(origin_port: int, directory: str) -> tuple[subprocess.Popen[bytes], int] | None:
    """haproxy forwarding a free port to the origin, once it answers; None where it is not installed."""
    binary = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if binary is None:
        return None
    from sandlot.testing.serving import free_port

    port = free_port()
    config = os.path.join(directory, "haproxy.cfg")
    with open(config, "w") as f:
        f.write(HAPROXY_CONFIG.format(port=port, origin_port=origin_port))
    process = subprocess.Popen([binary, "-f", config, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"http://127.0.0.1:{port}/bytes/1").read()
            return process, port
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                process.wait()
                return None
            time.sleep(0.05)


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
    scratch = tempfile.mkdtemp(prefix="sandlot-bench-hop-")
    haproxy = start_haproxy(origin_port, scratch)
    try:
        for src in sources:
            proxies[src] = start(PROXY, src, str(origin_port))
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        openers = {"direct": direct}
        for src, (_, port) in proxies.items():
            openers[src] = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"}))
        if haproxy is not None:
            openers[HAPROXY] = direct
        out: dict[str, Any] = {}
        for size in SIZES:
            urls = {name: f"http://127.0.0.1:{haproxy[1] if name == HAPROXY and haproxy else origin_port}/bytes/{size}"
                    for name in openers}
            for name, opener in openers.items():  # warm: imports, the origin's threads, the proxies' spare pipes
                for _ in range(5):
                    opener.open(urls[name]).read()
            times: dict[str, list[float]] = {name: [] for name in openers}
            cpu: dict[str, int] = {}
            before = {src: cpu_ns(process) for src, (process, _) in proxies.items()}
            for _ in range(n):
                for name, opener in openers.items():
                    started = time.perf_counter()
                    data = opener.open(urls[name]).read()
                    times[name].append((time.perf_counter() - started) * 1000)
                    assert len(data) == size
            cpu = {src: cpu_ns(process) - before[src] for src, (process, _) in proxies.items()}
            direct_ms = statistics.median(times["direct"])
            out[str(size)] = {"direct_ms": direct_ms, "proxies": {
                src: {"ms": statistics.median(times[src]), "added_ms": statistics.median(times[src]) - direct_ms,
                      "cpu_us_per_request": cpu[src] / n / 1000} for src in proxies}}
            if haproxy is not None:
                out[str(size)]["floor"] = {"ms": statistics.median(times[HAPROXY]),
                                           "added_ms": statistics.median(times[HAPROXY]) - direct_ms}
        return out
    finally:
        for process, _ in [*proxies.values(), *([haproxy] if haproxy else [])]:
            process.kill()
            process.wait()
        shutil.rmtree(scratch, ignore_errors=True)
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
            print(f"          through {src}: {figures['ms']:.2f} ms, {figures['added_ms']:+.2f} ms "
                  f"({figures['ms'] / row['direct_ms']:.2f}x); the proxy's CPU {figures['cpu_us_per_request']:.0f} us a request")
        if "floor" in row:
            print(f"          through {HAPROXY}: {row['floor']['ms']:.2f} ms, {row['floor']['added_ms']:+.2f} ms "
                  f"({row['floor']['ms'] / row['direct_ms']:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
