"""sandlot over HTTP on loopback, printed beside the same operations in-process and a bare FastAPI floor.

One run measures p50/p95 of ``print(1)`` one-shot runs, session create and
session ``1+1``: first in-process (the engine's own API), then through a real
``sandlot serve`` subprocess with httpx over loopback, so the HTTP overhead is
visible. In the same run: a bare FastAPI + uvicorn app (one POST route that
validates a small pydantic body and returns a small dict, served the way
sandlot is: uvloop, httptools) as the floor of what any FastAPI server costs, and the same
app on sandlot's own protocol class (``server/protocol.py``: one write per response), shown
beside it, not a goal; one-shot
runs back to back (no wait for the pool) and in bursts (16 at once); and
sustained throughput of 16 clients over HTTP beside 16 concurrent
``engine.execute`` in-process and a ``python3 -I -S -c`` subprocess per run.

Goals, as ratios to the same run's baselines: HTTP p50 minus in-process p50 at
most the bare FastAPI p50 (``execute`` and a session cell); HTTP throughput
at least 0.8x in-process and at least 2x the cold interpreter.

Run it as root inside the containment wrapper:
    python3 scripts/contained.py python3 benchmarks/bench_http.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pydantic import BaseModel

from sandlot import Engine, EngineConfig
from sandlot.testing.figures import percentile
from sandlot.testing.serving import ServerProcess, free_port

POOL_SIZE = 16
BURST = 8
CLIENTS = 16
THROUGHPUT_VS_IN_PROCESS = 0.8
THROUGHPUT_VS_COLD = 2.0


def stats(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95), "min": min(values)}


# ---- in-process ------------------------------------------------------------------------

async def in_process(iterations: int) -> dict[str, dict[str, float]]:
    """The same three operations through the engine's API, no HTTP."""
    execute, create, cell = [], [], []
    async with Engine(EngineConfig(pool_size=POOL_SIZE)) as engine:
        for _ in range(iterations // BURST):
            await wait_engine_pool(engine)
            for _ in range(BURST):
                started = time.perf_counter()
                result = await engine.execute("print(1)")
                execute.append((time.perf_counter() - started) * 1000)
                assert result.status == "ok" and result.stdout == "1\n", result
        for _ in range(iterations // 4):
            await wait_engine_pool(engine)
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
        back_to_back = []
        await wait_engine_pool(engine)
        for _ in range(iterations):  # no wait for the pool: what a client posting in a loop sees
            started = time.perf_counter()
            result = await engine.execute("print(1)")
            back_to_back.append((time.perf_counter() - started) * 1000)
            assert result.status == "ok", result
        burst: list[float] = []
        for _ in range(max(1, iterations // 16)):
            await wait_engine_pool(engine)

            async def one() -> None:
                started = time.perf_counter()
                result = await engine.execute("print(1)")
                burst.append((time.perf_counter() - started) * 1000)
                assert result.status == "ok", result

            await asyncio.gather(*(one() for _ in range(CLIENTS)))
    return {"execute print(1)": stats(execute), "session create": stats(create), "session 1+1": stats(cell),
            "back-to-back print(1)": stats(back_to_back), f"burst of {CLIENTS}": stats(burst)}


async def wait_engine_pool(engine: Engine) -> None:
    """Until the default pool and the lean zygote's (once started: the first run starts it) are full."""
    while True:
        lean = getattr(engine, "lean_pool", None)  # a main from before the lean zygote has none
        if len(engine.pool.ready) >= engine.pool.target and (lean is None or len(lean.ready) >= lean.target):
            return
        await asyncio.sleep(0.01)


async def in_process_sustained(seconds: float) -> dict[str, float]:
    """16 concurrent ``engine.execute`` calls, back to back, for ``seconds``: the engine's own rate."""
    async with Engine(EngineConfig(pool_size=POOL_SIZE)) as engine:
        await wait_engine_pool(engine)

        async def run() -> bool:
            result = await engine.execute("print(1)")
            return result.status == "ok" and result.stdout == "1\n"

        return await sustained(run, seconds)


async def cold_interpreter_sustained(seconds: float) -> dict[str, float]:
    """16 concurrent ``python3 -I -S -c print(1)`` subprocesses, back to back: a fresh interpreter per run."""
    async def run() -> bool:
        process = await asyncio.create_subprocess_exec(sys.executable, "-I", "-S", "-c", "print(1)",
                                                       stdout=asyncio.subprocess.PIPE)
        out, _ = await process.communicate()
        return process.returncode == 0 and out == b"1\n"

    return await sustained(run, seconds)


async def sustained(run: Callable[[], Awaitable[bool]], seconds: float) -> dict[str, float]:
    ok = errors = 0
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal ok, errors
        while time.monotonic() < deadline:
            started = time.perf_counter()
            good = await run()
            latencies.append((time.perf_counter() - started) * 1000)
            if good:
                ok += 1
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    return {"runs_per_s": ok / elapsed, "ok": ok, "errors": errors, "seconds": elapsed,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95)}


# ---- over HTTP -------------------------------------------------------------------------

def pools_full(health: dict[str, Any]) -> bool:
    """The default pool full, and the lean zygote's too (to its target now: it grows under bursts) once it is up
    (``pool_ready`` counts both)."""
    lean = health.get("lean")
    lean_ready = lean["pool_ready"] if lean else 0
    lean_full = not lean or lean["state"] == "unused" or lean_ready >= lean["pool_target"]
    return health["pool_ready"] - lean_ready >= POOL_SIZE and lean_full


def wait_pool_full(client: httpx.Client) -> None:
    while not pools_full(client.get("/healthz").json()):
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
        back_to_back = []
        wait_pool_full(client)
        for _ in range(iterations):  # no wait for the pool: what a client posting in a loop sees
            started = time.perf_counter()
            response = client.post("/v1/execute", json={"code": "print(1)"})
            back_to_back.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and response.json()["status"] == "ok", response.text
    burst = asyncio.run(http_bursts(base_url, max(1, iterations // 16)))
    return {"execute print(1)": stats(execute), "session create": stats(create), "session 1+1": stats(cell),
            "back-to-back print(1)": stats(back_to_back), f"burst of {CLIENTS}": stats(burst)}


async def http_bursts(base_url: str, bursts: int) -> list[float]:
    """``bursts`` times: wait for a full pool, then 16 one-shot runs at once, each on its own connection."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        for _ in range(bursts):
            while not pools_full((await client.get("/healthz")).json()):
                await asyncio.sleep(0.01)

            async def one() -> None:
                started = time.perf_counter()
                response = await client.post("/v1/execute", json={"code": "print(1)"})
                latencies.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and response.json()["status"] == "ok", response.text

            await asyncio.gather(*(one() for _ in range(CLIENTS)))
    return latencies


async def throughput(base_url: str, seconds: float) -> dict[str, float]:
    """16 clients, each posting one-shot runs back to back for ``seconds``."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        async def run() -> bool:
            response = await client.post("/v1/execute", json={"code": "print(1)"})
            return response.status_code == 200 and response.json()["status"] == "ok"

        return await sustained(run, seconds)


# ---- the floor: a bare FastAPI app ------------------------------------------------------

class FloorBody(BaseModel):
    """The floor's request body: as small as sandlot's ExecuteRequest at its smallest."""

    code: str
    timeout: float | None = None


def serve_floor(port: int, protocol: str) -> None:
    """A bare FastAPI app on uvicorn, served as sandlot serves (uvloop where installed, httptools, no access log);
    ``protocol`` "sandlot": with sandlot's own httptools protocol class instead of uvicorn's."""
    import uvicorn
    from fastapi import FastAPI

    from sandlot.server.protocol import bounded_http
    app = FastAPI()

    @app.post("/run")
    async def run(body: FloorBody) -> dict[str, object]:
        return {"status": "ok", "stdout": "1\n", "chars": len(body.code)}

    http = bounded_http(30.0) if protocol == "sandlot" else "httptools"
    uvicorn.run(app, host="127.0.0.1", port=port, http=http, log_config=None, access_log=False)


def bare_fastapi(iterations: int, protocol: str = "httptools") -> dict[str, float]:
    """p50/p95 of one POST round trip to the bare app, over one connection."""
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve-floor", str(port), "--floor-protocol", protocol])
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.post("/run", json={"code": "print(1)"})
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise
                    time.sleep(0.05)
            latencies = []
            for _ in range(iterations * 2):
                started = time.perf_counter()
                response = client.post("/run", json={"code": "print(1)"})
                latencies.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and response.json()["status"] == "ok", response.text
    finally:
        process.terminate()
        process.wait(10)
    return stats(latencies)


# ---- report ----------------------------------------------------------------------------

def main() -> int:
    # The server this starts keeps its sessions only while it runs: it must not wait on (or be refused by) the
    # data directory of a `sandlot serve` the developer may be running (one server per data dir).
    os.environ.setdefault("SANDLOT_DATA_DIR", "")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a CI smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    parser.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--floor-protocol", default="httptools", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor, args.floor_protocol)
        return 0
    iterations, seconds = (32, 2.0) if args.quick else (160, 6.0)

    floor = bare_fastapi(iterations)
    floor_own = bare_fastapi(iterations, "sandlot")
    cold = asyncio.run(cold_interpreter_sustained(seconds))
    local = asyncio.run(in_process(iterations))
    local_rate = asyncio.run(in_process_sustained(seconds))
    with ServerProcess("--pool-size", str(POOL_SIZE), "--log-level", "warning", pool_ready=POOL_SIZE) as server:
        remote = over_http(server.url, iterations)
        http_rate = asyncio.run(throughput(server.url, seconds))

    print(f"sandlot over HTTP (loopback) vs in-process; {os.cpu_count()} CPUs; ms")
    print(f"  {'operation':<22} {'in-process p50':>15} {'p95':>8} {'HTTP p50':>10} {'p95':>8} {'overhead p50':>13}")
    for name in local:
        a, b = local[name], remote[name]
        print(f"  {name:<22} {a['p50']:>15.3f} {a['p95']:>8.3f} {b['p50']:>10.3f} {b['p95']:>8.3f} "
              f"{b['p50'] - a['p50']:>13.3f}")
    print(f"  {'bare FastAPI POST':<22} {'':>15} {'':>8} {floor['p50']:>10.3f} {floor['p95']:>8.3f}")
    print(f"  {'  on sandlot protocol':<22} {'':>15} {'':>8} {floor_own['p50']:>10.3f} {floor_own['p95']:>8.3f}")
    print(f"\n  {CLIENTS} concurrent, print(1), runs/s:")
    for label, rate in (("over HTTP", http_rate), ("in-process engine", local_rate),
                        ("python3 -I -S -c", cold)):
        print(f"    {label:<20} {rate['runs_per_s']:7.1f}  ({rate['ok']:.0f} ok, {rate['errors']:.0f} errors in "
              f"{rate['seconds']:.1f} s; p50 {rate['p50']:.1f} ms, p95 {rate['p95']:.1f} ms)")
    overhead = {name: remote[name]["p50"] - local[name]["p50"] for name in ("execute print(1)", "session 1+1")}
    no_errors = http_rate["errors"] == 0
    verdicts = [
        ("execute: (HTTP - in-process) / bare FastAPI", overhead["execute print(1)"] / floor["p50"], 1.0, "<="),
        ("session 1+1: (HTTP - in-process) / bare", overhead["session 1+1"] / floor["p50"], 1.0, "<="),
        ("HTTP runs/s / in-process runs/s", http_rate["runs_per_s"] / local_rate["runs_per_s"],
         THROUGHPUT_VS_IN_PROCESS, ">="),
        ("HTTP runs/s / cold interpreter runs/s", http_rate["runs_per_s"] / cold["runs_per_s"],
         THROUGHPUT_VS_COLD, ">="),
    ]
    print("\ngoals (ratios to baselines measured in this run)")
    for label, value, goal, op in verdicts:
        met = value <= goal if op == "<=" else value >= goal and no_errors
        print(f"  {'PASS' if met else 'MISS'}  {label:<44} {value:6.2f}x  (goal {op} {goal}x)")
    print("  (not goals) the same overheads / the bare app on sandlot's own protocol class: "
          f"execute {overhead['execute print(1)'] / floor_own['p50']:.2f}x, "
          f"session 1+1 {overhead['session 1+1'] / floor_own['p50']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"in_process": local, "http": remote, "bare_fastapi": floor,
                       "bare_fastapi_sandlot_protocol": floor_own, "throughput": http_rate,
                       "in_process_throughput": local_rate, "cold_interpreter_throughput": cold,
                       "ratios": {label: value for label, value, _, _ in verdicts}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
