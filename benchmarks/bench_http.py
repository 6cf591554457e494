"""sandlot over HTTP on loopback, printed beside the same operations in-process.

One run measures p50/p95 of ``print(1)`` one-shot runs, session create and
session ``1+1``: first in-process (the engine's own API), then through a real
``sandlot serve`` subprocess with httpx over loopback, so the HTTP overhead is
visible. Then sustained throughput with 16 concurrent clients. Goals (2-core
machine): ``/v1/execute print(1)`` p50 < 3 ms, session ``1+1`` p50 < 2 ms,
16 clients >= 100 runs/s with no errors.

Run it as root inside the containment wrapper:
    python3 scripts/contained.py python3 benchmarks/bench_http.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import httpx

from sandlot import Engine, EngineConfig
from sandlot.testing.figures import percentile
from sandlot.testing.serving import ServerProcess

POOL_SIZE = 16
BURST = 8
CLIENTS = 16
GOALS = {"execute": 3.0, "cell": 2.0, "runs_per_s": 100.0}


def stats(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95), "min": min(values)}


# ---- in-process ------------------------------------------------------------------------

async def in_process(iterations: int) -> dict[str, dict[str, float]]:
    """The same three operations through the engine's API, no HTTP."""
    execute, create, cell = [], [], []
    async with Engine(EngineConfig(pool_size=POOL_SIZE)) as engine:
        for _ in range(iterations // BURST):
            while len(engine.pool.ready) < engine.pool.target:
                await asyncio.sleep(0.01)
            for _ in range(BURST):
                started = time.perf_counter()
                result = await engine.execute("print(1)")
                execute.append((time.perf_counter() - started) * 1000)
                assert result.status == "ok" and result.stdout == "1\n", result
        for _ in range(iterations // 4):
            while len(engine.pool.ready) < engine.pool.target:
                await asyncio.sleep(0.01)
            started = time.perf_counter()
            session = await engine.create_session()
            create.append((time.perf_counter() - started) * 1000)
            await engine.close_session(session.id)
        session = await engine.create_session()
        for _ in range(iterations):
            started = time.perf_counter()
            result = await session.execute("1+1")
            cell.append((time.perf_counter() - started) * 1000)
            assert result.outputs[0].data["text/plain"] == "2", result  # type: ignore[union-attr]
    return {"execute print(1)": stats(execute), "session create": stats(create), "session 1+1": stats(cell)}


# ---- over HTTP -------------------------------------------------------------------------

def wait_pool_full(client: httpx.Client) -> None:
    while client.get("/healthz").json()["pool_ready"] < POOL_SIZE:
        time.sleep(0.01)


def over_http(base_url: str, iterations: int) -> dict[str, dict[str, float]]:
    execute, create, cell = [], [], []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for _ in range(iterations // BURST):
            wait_pool_full(client)
            for _ in range(BURST):
                started = time.perf_counter()
                response = client.post("/v1/execute", json={"code": "print(1)"})
                execute.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and response.json()["stdout"] == "1\n", response.text
        for _ in range(iterations // 4):
            wait_pool_full(client)
            started = time.perf_counter()
            response = client.post("/v1/sessions")
            create.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 201, response.text
            client.delete(f"/v1/sessions/{response.json()['id']}")
        session_id = client.post("/v1/sessions").json()["id"]
        for _ in range(iterations):
            started = time.perf_counter()
            response = client.post(f"/v1/sessions/{session_id}/execute", json={"code": "1+1"})
            cell.append((time.perf_counter() - started) * 1000)
            assert response.json()["outputs"][0]["data"]["text/plain"] == "2", response.text
        client.delete(f"/v1/sessions/{session_id}")
    return {"execute print(1)": stats(execute), "session create": stats(create), "session 1+1": stats(cell)}


async def throughput(base_url: str, seconds: float) -> dict[str, float]:
    """16 clients, each posting one-shot runs back to back for ``seconds``."""
    ok = errors = 0
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        async def worker() -> None:
            nonlocal ok, errors
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.post("/v1/execute", json={"code": "print(1)"})
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code == 200 and response.json()["status"] == "ok":
                    ok += 1
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    return {"runs_per_s": ok / elapsed, "ok": ok, "errors": errors, "seconds": elapsed,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95)}


# ---- report ----------------------------------------------------------------------------

def main() -> int:
    # The server this starts keeps its sessions only while it runs: it must not wait on (or be refused by) the
    # data directory of a `sandlot serve` the developer may be running (one server per data dir).
    os.environ.setdefault("SANDLOT_DATA_DIR", "")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a CI smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = parser.parse_args()
    iterations, seconds = (32, 2.0) if args.quick else (160, 6.0)

    local = asyncio.run(in_process(iterations))
    with ServerProcess("--pool-size", str(POOL_SIZE), "--log-level", "warning", pool_ready=POOL_SIZE) as server:
        remote = over_http(server.url, iterations)
        sustained = asyncio.run(throughput(server.url, seconds))

    print(f"sandlot over HTTP (loopback) vs in-process; {os.cpu_count()} CPUs; ms")
    print(f"  {'operation':<18} {'in-process p50':>15} {'p95':>8} {'HTTP p50':>10} {'p95':>8} {'overhead p50':>13}")
    for name in local:
        a, b = local[name], remote[name]
        print(f"  {name:<18} {a['p50']:>15.3f} {a['p95']:>8.3f} {b['p50']:>10.3f} {b['p95']:>8.3f} "
              f"{b['p50'] - a['p50']:>13.3f}")
    print(f"\n  {CLIENTS} concurrent clients, /v1/execute print(1): {sustained['runs_per_s']:.1f} runs/s "
          f"({sustained['ok']:.0f} ok, {sustained['errors']:.0f} errors in {sustained['seconds']:.1f} s; "
          f"p50 {sustained['p50']:.1f} ms, p95 {sustained['p95']:.1f} ms)")
    verdicts = [
        ("/v1/execute print(1) p50", remote["execute print(1)"]["p50"], GOALS["execute"], "ms", "<"),
        ("session 1+1 p50 over HTTP", remote["session 1+1"]["p50"], GOALS["cell"], "ms", "<"),
        (f"{CLIENTS}-client throughput", sustained["runs_per_s"], GOALS["runs_per_s"], "runs/s", ">="),
    ]
    print("\ngoals")
    for label, value, goal, unit, op in verdicts:
        met = value < goal if op == "<" else value >= goal and sustained["errors"] == 0
        print(f"  {'PASS' if met else 'MISS'}  {label:<28} {value:8.3f} {unit}  (goal {op} {goal} {unit})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"in_process": local, "http": remote, "throughput": sustained}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
