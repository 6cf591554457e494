"""Preloading in an environment: the first ``import`` of a module its zygote preloaded, against the same module
in an environment that did not preload it, in one run.

One engine with two named environments on this machine's Python (the server's own interpreter, so the module is
installed in both): ``preloaded`` imports ``--module`` (default ``pandas``) in its zygote, ``bare`` does not. Each
run is a fresh one-shot sandbox that times its own first ``import`` (``time.perf_counter`` around it, inside the
sandbox) and the engine times the whole run; both are printed per environment (p50/p95), with the ratio bare /
preloaded. The first run in each environment also starts its zygote (lanes start at first use) and is left out.
Goal: the preloaded import is far cheaper than a cold one (it is a ``sys.modules`` lookup); the bench prints the
ratio, it does not judge it.

    python3 scripts/contained.py python3 benchmarks/bench_environments.py [--quick] [--module NAME] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from sandlot import Engine, EngineConfig
from sandlot._config import EnvironmentSpec
from sandlot.testing.figures import percentile


async def one(engine: Engine, environment: str, module: str) -> tuple[float, float]:
    """(ms the first import took inside the sandbox, ms the whole run took as the engine saw it)."""
    code = (f"import sys, time\nassert {module!r} not in sys.modules or {environment!r} == 'preloaded'\n"
            f"started = time.perf_counter()\nimport {module}\nprint((time.perf_counter() - started) * 1000)")
    started = time.perf_counter()
    result = await engine.execute(code, environment=environment, timeout=120)
    run_ms = (time.perf_counter() - started) * 1000
    assert result.status == "ok", result
    return float(result.stdout), run_ms


async def settle(engine: Engine, name: str) -> None:
    deadline = time.monotonic() + 30
    while len(engine.lanes[name].pool.ready) < engine.lanes[name].pool.target:
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.01)


async def main(quick: bool, module: str) -> dict[str, Any]:
    runs = 3 if quick else 15
    config = EngineConfig(preload=(), pool_size=1, environments={
        "preloaded": EnvironmentSpec(python=sys.executable, preload=(module,), pool_size=1),
        "bare": EnvironmentSpec(python=sys.executable, pool_size=1)})
    figures: dict[str, Any] = {"module": module, "runs": runs}
    async with Engine(config) as engine:
        for name in ("preloaded", "bare"):
            await one(engine, name, module)  # starts the lane's zygote: not measured
        samples: dict[str, dict[str, list[float]]] = {n: {"import": [], "run": []} for n in ("preloaded", "bare")}
        for _ in range(runs):
            for name in ("preloaded", "bare"):  # interleaved, so drift on a busy host hits both alike
                await settle(engine, name)  # each run from a warm pool, as a steady server serves it
                imported, ran = await one(engine, name, module)
                samples[name]["import"].append(imported)
                samples[name]["run"].append(ran)
    for name, got in samples.items():
        figures[name] = {f"{kind}_{p}": round(percentile(values, pct), 3)
                         for kind, values in got.items() for p, pct in (("p50", 50), ("p95", 95))}
    pre, bare = samples["preloaded"], samples["bare"]
    figures["import_ratio"] = round(statistics.median(bare["import"]) / max(statistics.median(pre["import"]), 1e-3), 1)
    figures["run_ratio"] = round(statistics.median(bare["run"]) / max(statistics.median(pre["run"]), 1e-3), 1)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 runs per environment (CI)")
    parser.add_argument("--module", default="pandas", help="the module to import  [default: pandas]")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    out = asyncio.run(main(args.quick, args.module))
    print(f"first `import {out['module']}` in a fresh sandbox, {out['runs']} runs per environment (ms):")
    for name in ("preloaded", "bare"):
        f = out[name]
        print(f"  {name:<10} import p50 {f['import_p50']:>9.3f}  p95 {f['import_p95']:>9.3f}   "
              f"whole run p50 {f['run_p50']:>8.2f}  p95 {f['run_p95']:>8.2f}")
    print(f"  not preloaded / preloaded: import {out['import_ratio']}x, whole run {out['run_ratio']}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
