"""The TypeScript SDK from Node beside the Python SDK: ``execute("print(1)")`` over loopback, one run.

One ``sandlot serve`` subprocess; the Python SDK (``sandlot.client.Client`` and ``AsyncClient``)
times runs in this process, the TypeScript SDK (``clients/typescript/dist``) in a Node process
that this script drives over stdin, so the faces take turns: each round waits for the warm pool
to be full, then times a burst of runs back to back with one face, then the next face, in a
rotating order. On Node the package sends with ``node:http`` (its ``node`` entry point); the
"on fetch" row is the same SDK on Node's ``fetch``, the transport other runtimes use. Bare
``httpx`` and bare ``fetch`` rows show what the transports cost without either SDK. Every run
is checked (``stdout == "1\\n"``). Goal: the Node SDK's p50 within 1.2x the Python SDK's
(``Client``).

Needs Node 20+ and the package built once: ``cd clients/typescript && npm ci && npm run build``.
Run it as root inside the containment wrapper:
    python3 scripts/contained.py python3 benchmarks/bench_typescript.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from sandlot.client import AsyncClient, Client
from sandlot.testing.figures import percentile
from sandlot.testing.serving import ServerProcess

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "clients" / "typescript"
NODE_SIDE = pathlib.Path(__file__).resolve().parent / "bench_typescript.mjs"
POOL_SIZE = 16
BURST = 8
GOAL_RATIO = 1.2
FACES = ["python Client", "python AsyncClient", "python httpx (no SDK)", "node sandlot Client",
         "node sandlot on fetch", "node fetch (no SDK)"]


class NodeSide:
    """The Node process that times the TypeScript SDK when told to."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(["node", str(NODE_SIDE), url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)

    def burst(self, face: str, count: int) -> tuple[list[float], int, float]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{face} {count}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the Node side ended early")
        answer = json.loads(line)
        return answer["ms"], answer["failed"], answer["cpuMs"]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(30)


def timed(run: Callable[[], bool], count: int) -> tuple[list[float], int, float]:
    """Latencies, failures, and this process's CPU time (ms) over the burst."""
    ms, failed = [], 0
    cpu = time.process_time()
    for _ in range(count):
        started = time.perf_counter()
        ok = run()
        ms.append((time.perf_counter() - started) * 1000)
        failed += not ok
    return ms, failed, (time.process_time() - cpu) * 1000


def main() -> int:
    # The server this starts keeps its sessions only while it runs: it must not wait on (or be refused by) the
    # data directory of a `sandlot serve` the developer may be running (one server per data dir).
    os.environ.setdefault("SANDLOT_DATA_DIR", "")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a CI smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = parser.parse_args()
    rounds = 6 if args.quick else 30
    if not shutil.which("node"):
        print("bench_typescript: node is not installed (Node 20+ is needed)", file=sys.stderr)
        return 2
    if not (PACKAGE / "dist" / "node.js").exists():
        print(f"bench_typescript: build the package first: cd {PACKAGE} && npm ci && npm run build", file=sys.stderr)
        return 2

    server = ServerProcess("--pool-size", str(POOL_SIZE), "--log-level", "warning", pool_ready=POOL_SIZE)
    server.start()
    url = server.url
    node = NodeSide(url)
    runner = asyncio.Runner()
    latencies: dict[str, list[float]] = {face: [] for face in FACES}
    failures = dict.fromkeys(FACES, 0)
    cpu = dict.fromkeys(FACES, 0.0)
    try:
        with Client(url) as sync_client, httpx.Client(base_url=url, timeout=60) as raw:
            async_client = AsyncClient(url)

            def async_run() -> bool:
                return runner.run(async_client.execute("print(1)")).stdout == "1\n"

            python: dict[str, Callable[[], bool]] = {
                "python Client": lambda: sync_client.execute("print(1)").stdout == "1\n",
                "python AsyncClient": async_run,
                "python httpx (no SDK)": lambda: raw.post("/v1/execute", json={"code": "print(1)"}).json()["stdout"] == "1\n",
            }
            node_faces = {"node sandlot Client": "sdk", "node sandlot on fetch": "sdk-fetch", "node fetch (no SDK)": "fetch"}

            def burst(face: str, count: int) -> tuple[list[float], int, float]:
                if face in python:
                    return timed(python[face], count)
                return node.burst(node_faces[face], count)

            for face in FACES:  # warm up: connections open, code paths compiled
                burst(face, 4)
            for index in range(rounds):
                for face in FACES[index % len(FACES):] + FACES[:index % len(FACES)]:
                    while raw.get("/healthz").json()["pool_ready"] < POOL_SIZE:
                        time.sleep(0.01)
                    ms, failed, used = burst(face, BURST)
                    latencies[face] += ms
                    failures[face] += failed
                    cpu[face] += used
            runner.run(async_client.close())
    finally:
        runner.close()
        node.close()
        server.stop(grace=60)

    stats = {face: {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95), "min": min(ms),
                    "failed": failures[face], "client_cpu_ms": cpu[face] / len(ms)} for face, ms in latencies.items()}
    node_version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    print(f'execute("print(1)") over loopback, back to back from a full pool; {os.cpu_count()} CPUs; '
          f"Python {sys.version.split()[0]}, Node {node_version}; ms")
    print(f"  {'client':<24} {'p50':>7} {'p95':>7} {'min':>7} {'client CPU/run':>15} {'n':>5} {'failed':>7}")
    for face, s in stats.items():
        print(f"  {face:<24} {s['p50']:>7.3f} {s['p95']:>7.3f} {s['min']:>7.3f} {s['client_cpu_ms']:>15.3f} "
              f"{s['n']:>5.0f} {s['failed']:>7.0f}")
    print("  (client CPU/run: the client process's CPU time per run, its own cost whatever the machine's load)")
    ratio = stats["node sandlot Client"]["p50"] / stats["python Client"]["p50"]
    print(f"\n  node sandlot Client p50 / python Client p50 = {ratio:.2f}x")
    failed = sum(failures.values())
    met = ratio <= GOAL_RATIO and failed == 0
    print(f"goal\n  {'PASS' if met else 'MISS'}  Node SDK p50 within {GOAL_RATIO}x the Python SDK's ({ratio:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"stats": stats, "ratio": ratio}, f, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
