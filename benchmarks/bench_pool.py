"""A pool that keeps up: the adaptive warm pool against a fixed one of the same size, in one run.

Two engines in turn, both with ``pool_size`` 4: one fixed (``pool_max_size=0``), one adaptive (the default
maximum, 16). Each gets the same two patterns of one-shot ``print(1)`` runs, in-process (no HTTP, so the figures
are the pool's):

- bursts: 12 runs at once, then a pause long enough for refills, repeated;
- back to back: one run after another with no pause, as a single client looping.

Printed per engine and pattern: p50/p95 per run, and the share of runs that found a warm sandbox (a run that
found the pool empty is a miss, counted by the pool). Then the adaptive engine is left idle and the bench prints
how its target falls back to ``pool_size``. Goal (issue #13, "a pool that keeps up"): the adaptive pool serves
more of the bursts warm than the fixed one, with a lower mean time per burst run; and it is back at ``pool_size`` once idle.

    python3 scripts/contained.py python3 benchmarks/bench_pool.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from sandlot import Engine, EngineConfig
from sandlot.testing.figures import percentile

POOL_SIZE = 4
BURST = 12
SHRINK_AFTER = 1.0


async def timed_run(engine: Engine) -> float:
    started = time.perf_counter()
    result = await engine.execute("print(1)")
    assert result.status == "ok" and result.stdout == "1\n", result
    return (time.perf_counter() - started) * 1000


async def settle(engine: Engine, timeout: float = 30.0) -> None:
    """Wait until the pool is full at its current target (a fair start for the next pattern)."""
    deadline = time.monotonic() + timeout
    while len(engine.pool.ready) < engine.pool.target or engine.pool.starting:
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.01)


async def bursts(engine: Engine, count: int) -> dict[str, float]:
    times: list[float] = []
    misses = engine.pool.misses
    for _ in range(count):
        await settle(engine, timeout=2.0)  # the pause between bursts: refills, bounded
        times += await asyncio.gather(*(timed_run(engine) for _ in range(BURST)))
    return summary(times, engine.pool.misses - misses)


async def back_to_back(engine: Engine, count: int) -> dict[str, float]:
    await settle(engine)
    times: list[float] = []
    misses = engine.pool.misses
    for _ in range(count):
        times.append(await timed_run(engine))
    return summary(times, engine.pool.misses - misses)


def summary(times: list[float], misses: int) -> dict[str, float]:
    return {"runs": len(times), "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
            "mean_ms": sum(times) / len(times), "warm": 1 - misses / len(times)}


async def measure(adaptive: bool, n_bursts: int, n_sequential: int) -> dict[str, Any]:
    # No lean zygote: its own (adaptive) pool would serve part of these print(1) runs, and the fixed pool would not
    # be the only one (docs/architecture.md). This measures the pool, not the routing.
    config = EngineConfig(pool_size=POOL_SIZE, pool_max_size=None if adaptive else 0, pool_shrink_after=SHRINK_AFTER,
                          lean_pool_size=0)
    async with Engine(config) as engine:
        await settle(engine)
        figures: dict[str, Any] = {"max_target": engine.pool.max_target}
        figures["bursts"] = await bursts(engine, n_bursts)
        figures["target_after_bursts"] = engine.pool.target
        figures["back_to_back"] = await back_to_back(engine, n_sequential)
        figures["target_after_back_to_back"] = engine.pool.target
        started, steps = time.monotonic(), []
        while engine.pool.target > POOL_SIZE and time.monotonic() - started < 20 * SHRINK_AFTER + 10:
            await asyncio.sleep(0.05)
            if not steps or steps[-1][1] != engine.pool.target:
                steps.append((round(time.monotonic() - started, 2), engine.pool.target))
        figures["shrink_steps"] = steps
        figures["idle_target"] = engine.pool.target
        figures["idle_ready"] = len(engine.pool.ready)
    return figures


def line(name: str, f: dict[str, float]) -> str:
    return (f"  {name:<14} {f['runs']:>5} runs  p50 {f['p50_ms']:7.2f} ms  p95 {f['p95_ms']:7.2f} ms  "
            f"mean {f['mean_ms']:7.2f} ms  warm {f['warm']:6.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (CI)")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    n_bursts, n_sequential = (4, 60) if args.quick else (20, 400)
    report = {name: asyncio.run(measure(name == "adaptive", n_bursts, n_sequential)) for name in ("fixed", "adaptive")}
    print(f"warm pool: fixed vs adaptive, pool_size {POOL_SIZE}, bursts of {BURST}; {os.cpu_count()} CPUs")
    for name, figures in report.items():
        print(f"{name} (max {figures['max_target']}; target after the bursts {figures['target_after_bursts']}, "
              f"after back-to-back {figures['target_after_back_to_back']})")
        print(line("bursts", figures["bursts"]))
        print(line("back to back", figures["back_to_back"]))
    fixed, adaptive = report["fixed"], report["adaptive"]
    ratio = fixed["bursts"]["mean_ms"] / adaptive["bursts"]["mean_ms"]
    print(f"adaptive, idle: target {adaptive['idle_target']} (ready {adaptive['idle_ready']}); steps (s, target): "
          f"{adaptive['shrink_steps']}")
    goals = [
        ("bursts served warm: adaptive > fixed", adaptive["bursts"]["warm"] > fixed["bursts"]["warm"],
         f"{adaptive['bursts']['warm']:.1%} vs {fixed['bursts']['warm']:.1%}"),
        ("mean burst run: adaptive below fixed", ratio > 1.0, f"fixed/adaptive {ratio:.2f}x"),
        (f"idle: back to pool_size {POOL_SIZE}", adaptive["idle_target"] == POOL_SIZE and adaptive["idle_ready"] <= POOL_SIZE,
         f"target {adaptive['idle_target']}, ready {adaptive['idle_ready']}"),
    ]
    for name, met, detail in goals:
        print(f"  {'MET ' if met else 'MISS'}  {name}: {detail}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
