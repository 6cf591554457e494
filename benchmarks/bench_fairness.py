#!/usr/bin/env python3
"""Fairness between tenants: one API key floods, another's paced runs must not notice much.

Against a real ``sandlot serve`` (a subprocess on a free loopback port, two API keys, the default settings):
key B posts one-shot ``print(1)`` runs, one every 200 ms, first on the idle server, then while key A floods
it with six CPU spinners (``while True: pass`` in sessions) and twelve clients posting one-shot runs back to
back. It prints B's p50 both times, their ratio, and MET or MISS against the goal of issue #10: within 3x.

Usage::

    python3 scripts/contained.py python3 benchmarks/bench_fairness.py [--quick] [--json PATH]

``tests/test_fairness.py`` runs the same measurement (``measure``) with fewer samples. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from sandlot.testing.serving import ServerProcess

GOAL = 3.0
FLOOD_KEY = "bench-fairness-flood-key"
PACED_KEY = "bench-fairness-paced-key"
PACED_CODE = "print(1)"
SPIN_CODE = "while True: pass"


@dataclass
class Measurement:
    idle_ms: list[float]
    flood_ms: list[float]
    flood_runs: int = 0
    """One-shot runs the flood's clients got answered while the paced runs were measured."""
    flood_statuses: dict[str, int] = field(default_factory=dict)
    spinners_running: int = 0
    paced_errors: list[str] = field(default_factory=list)
    idle_run_ms: list[float] = field(default_factory=list)
    flood_run_ms: list[float] = field(default_factory=list)
    """The runs' own ``duration_ms`` (in the sandbox, from the code's start to its end): the rest of a latency
    is the server's, waiting for a sandbox included."""

    @property
    def idle_p50(self) -> float:
        return statistics.median(self.idle_ms)

    @property
    def flood_p50(self) -> float:
        return statistics.median(self.flood_ms)

    @property
    def ratio(self) -> float:
        return self.flood_p50 / self.idle_p50

    @property
    def met(self) -> bool:
        return self.ratio <= GOAL and not self.paced_errors

    def summary(self) -> str:
        return (f"idle p50 {self.idle_p50:.2f} ms (run {statistics.median(self.idle_run_ms or [0]):.2f}), "
                f"flood p50 {self.flood_p50:.2f} ms (run {statistics.median(self.flood_run_ms or [0]):.2f}), "
                f"ratio {self.ratio:.2f}x "
                f"(goal <= {GOAL:g}x); {len(self.idle_ms)}+{len(self.flood_ms)} paced runs, "
                f"{self.spinners_running} spinners running, flood answers {dict(self.flood_statuses)}")


Post = Callable[[], Awaitable[httpx.Response | None]]
"""Posts one paced run and returns its response (None: no usable answer, already accounted for by the caller)."""


async def paced_runs(client: httpx.AsyncClient, samples: int, interval: float, errors: list[str],
                     run_ms: list[float] | None = None, *, until: Callable[[], bool] | None = None,
                     post: Post | None = None) -> list[float]:
    """``samples`` one-shot runs, one every ``interval`` seconds (not back to back): each one's latency in ms
    (and its ``duration_ms`` added to ``run_ms``). ``until``: stop early once it says so (the soak: at its
    deadline); ``post``: how a run is posted (the soak: through its recorder, which judges every answer)."""
    latencies = []
    next_at = time.monotonic()
    for _ in range(samples):
        if until is not None and until():
            break
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        started = time.perf_counter()
        response = await (post() if post is not None else client.post("/v1/execute", json={"code": PACED_CODE}))
        elapsed = (time.perf_counter() - started) * 1000
        if response is None:
            errors.append("no usable answer")
            continue
        if response.status_code != 200 or response.json().get("stdout") != "1\n":
            errors.append(f"{response.status_code} {response.text[:200]}")
            continue
        latencies.append(elapsed)
        if run_ms is not None:
            run_ms.append(response.json()["duration_ms"])
    return latencies


class Flood:
    """Key A: ``spinners`` sessions spinning in a cell, and ``clients`` posting one-shot runs back to back."""

    def __init__(self, url: str, key: str, spinners: int, clients: int) -> None:
        self.url, self.key, self.spinners, self.clients = url, key, spinners, clients
        self.statuses: Counter[str] = Counter()
        self.runs = 0
        self.counting = False
        self._sessions: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._client = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120,
                                         limits=httpx.Limits(max_connections=spinners + clients + 4))

    async def start(self) -> None:
        for _ in range(self.spinners):
            response = await self._client.post("/v1/sessions", json={})
            response.raise_for_status()
            self._sessions.append(response.json()["id"])
        self._tasks = [asyncio.ensure_future(self._spin(sid)) for sid in self._sessions]
        self._tasks += [asyncio.ensure_future(self._one_shots()) for _ in range(self.clients)]

    async def running_spinners(self) -> int:
        """Sessions of ours whose interpreter is busy now (from their live metrics)."""
        busy = 0
        for sid in self._sessions:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                busy += bool((await self._client.get(f"/v1/sessions/{sid}/metrics")).json().get("running"))
        return busy

    async def _spin(self, session_id: str) -> None:
        while True:
            await self._client.post(f"/v1/sessions/{session_id}/execute", json={"code": SPIN_CODE, "timeout": 600})

    async def _one_shots(self) -> None:
        while True:
            try:
                response = await self._client.post("/v1/execute", json={"code": PACED_CODE})
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
                continue
            if self.counting:
                self.statuses[str(response.status_code)] += 1
                self.runs += response.status_code == 200
            if response.status_code in (429, 503):
                # A well-behaved client: it waits as long as the server asks.
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sid in self._sessions:  # ends the spinning cells, their sandboxes killed
            with contextlib.suppress(httpx.HTTPError):
                await self._client.delete(f"/v1/sessions/{sid}")
        await self._client.aclose()


async def measure(url: str, *, samples: int = 50, interval: float = 0.2, spinners: int = 6, clients: int = 12,
                  flood_key: str = FLOOD_KEY, paced_key: str = PACED_KEY) -> Measurement:
    """Key B's paced runs on the idle server, then under key A's flood, against the server at ``url``."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {paced_key}"}, timeout=60) as paced:
        errors: list[str] = []
        await paced_runs(paced, 5, interval, errors)  # warm-up: connections, lazily made server state
        errors.clear()
        idle_run_ms: list[float] = []
        flood_run_ms: list[float] = []
        idle = await paced_runs(paced, samples, interval, errors, idle_run_ms)
        flood = Flood(url, flood_key, spinners, clients)
        try:
            await flood.start()
            await asyncio.sleep(1.0)  # the spinners spin, the pool has run dry
            flood.counting = True
            under = await paced_runs(paced, samples, interval, errors, flood_run_ms)
            flood.counting = False
            spinning = await flood.running_spinners()
        finally:
            await flood.stop()
    return Measurement(idle, under, flood.runs, dict(flood.statuses), spinning, errors, idle_run_ms, flood_run_ms)


async def measure_interleaved(url: str, *, blocks: int = 3, samples: int = 8, interval: float = 0.2,
                              spinners: int = 6, clients: int = 12, flood_key: str = FLOOD_KEY,
                              paced_key: str = PACED_KEY) -> Measurement:
    """``measure`` with its two phases cut into ``blocks`` turns each (idle, flood, idle, flood, ...): load from
    outside that comes and goes then falls on both, where one idle phase before one flood phase compares two
    moments of a shared machine. Each flood block starts a flood afresh (and waits for it to spin); each idle
    block starts once the last flood's sandboxes are gone and the pool is full again."""
    idle: list[float] = []
    under: list[float] = []
    idle_run_ms: list[float] = []
    flood_run_ms: list[float] = []
    errors: list[str] = []
    statuses: Counter[str] = Counter()
    runs = 0
    spinning = spinners
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {paced_key}"}, timeout=60) as paced:
        await paced_runs(paced, 5, interval, errors)  # warm-up: connections, lazily made server state
        errors.clear()
        for _ in range(blocks):
            await _pool_full(paced)
            idle += await paced_runs(paced, samples, interval, errors, idle_run_ms)
            flood = Flood(url, flood_key, spinners, clients)
            try:
                await flood.start()
                await asyncio.sleep(1.0)  # the spinners spin, the pool has run dry
                flood.counting = True
                under += await paced_runs(paced, samples, interval, errors, flood_run_ms)
                flood.counting = False
                spinning = min(spinning, await flood.running_spinners())
            finally:
                await flood.stop()
            statuses.update(flood.statuses)
            runs += flood.runs
    return Measurement(idle, under, runs, dict(statuses), spinning, errors, idle_run_ms, flood_run_ms)


async def _pool_full(client: httpx.AsyncClient, ready: int = 4, timeout: float = 30.0) -> None:
    """Until the server has ``ready`` warm sandboxes (the default pool size, as ``serve`` waits for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await client.get("/healthz")).json().get("pool_ready", 0) >= ready:
            return
        await asyncio.sleep(0.05)


# ---- a server of its own -------------------------------------------------------------------------

@contextlib.contextmanager
def serve(extra_env: dict[str, str] | None = None) -> Any:
    """``sandlot serve`` with the two keys on a free loopback port (default settings otherwise); yields its URL."""
    env = {"SANDLOT_API_KEYS": f"{FLOOD_KEY},{PACED_KEY}", "SANDLOT_LOG_LEVEL": "warning",
           "SANDLOT_UI": "false", "SANDLOT_DATA_DIR": "", **(extra_env or {})}  # no sessions left in /var/lib/sandlot
    with ServerProcess(env=env, pool_ready=4) as server:  # the default pool_size: full
        yield server.url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 paced runs per phase instead of 50")
    parser.add_argument("--json", metavar="PATH", help="write every latency to this file")
    args = parser.parse_args()
    samples = 20 if args.quick else 50
    with serve() as url:
        result = asyncio.run(measure(url, samples=samples))
    print("fairness between tenants: key B's paced one-shot print(1), one every 200 ms; key A floods with "
          "6 spinning sessions + 12 back-to-back one-shot clients")
    print(f"  idle server      p50 {result.idle_p50:8.2f} ms   p95 {_p95(result.idle_ms):8.2f} ms   "
          f"({len(result.idle_ms)} runs; in the sandbox p50 {statistics.median(result.idle_run_ms):.2f} ms)")
    print(f"  under the flood  p50 {result.flood_p50:8.2f} ms   p95 {_p95(result.flood_ms):8.2f} ms   "
          f"({len(result.flood_ms)} runs; in the sandbox p50 {statistics.median(result.flood_run_ms):.2f} ms)")
    print(f"  flood: {result.spinners_running} spinners running at the end; its one-shot clients got "
          f"{result.flood_runs} runs answered meanwhile; answers {result.flood_statuses}")
    if result.paced_errors:
        print(f"  paced errors: {result.paced_errors[:5]}")
    print(f"  ratio {result.ratio:.2f}x")
    print(f"{'MET ' if result.met else 'MISS'}  key B's p50 under key A's flood within {GOAL:g}x of idle: "
          f"{result.flood_p50:.2f} ms vs {result.idle_p50:.2f} ms ({result.ratio:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**asdict(result), "idle_p50": result.idle_p50, "flood_p50": result.flood_p50,
                       "ratio": result.ratio, "met": result.met}, f, indent=2)
    return 0 if result.met else 1


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(len(values) * 0.95) - 1)]


if __name__ == "__main__":
    sys.exit(main())
