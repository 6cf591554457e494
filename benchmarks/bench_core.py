#!/usr/bin/env python3
"""Core latency, memory and throughput benchmark for sandlot, with baselines from the same run.

Measures p50/p95 latency of one-shot pool runs (print(1), numpy, pandas, a
matplotlib PNG), session create and a session cell, next to what the same
machine does for ``python3 -c``, ``bwrap python3 -c`` and a Jupyter kernel
(start, and an execute round trip). Then idle PSS per pooled sandbox and
sustained one-shot runs per second, and a PASS/MISS line per project goal.

Usage::

    python3 benchmarks/bench_core.py [--quick] [--json PATH]

Run it as root for full isolation (namespaces + cgroups), ideally through
``scripts/contained.py``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sandlot import Engine, EngineConfig, ExecutionResult
from sandlot.testing.figures import percentile

# ---- what we run -------------------------------------------------------------

PRINT_CODE = "print(1)"
NUMPY_CODE = "import numpy as np; a = np.random.rand(200,200); float((a @ a).sum())"
PANDAS_CODE = (
    "import pandas as pd\n"
    "df = pd.DataFrame({'k': [i % 10 for i in range(1000)], 'v': range(1000)})\n"
    "df.groupby('k').sum().head()\n"
)
PLOT_CODE = "import matplotlib.pyplot as plt; plt.plot(range(10))"
CELL_CODE = "1+1"

# Pool big enough that 16 back-to-back runs never find it empty, even though
# each run only triggers the refill in the background.
LATENCY_POOL_SIZE = 32
BURST = 16
# A pause longer than the VM's vCPU idle threshold: the "after idle" numbers pay the wake-up.
IDLE_PAUSE = 0.05
SUSTAINED_CONCURRENCY = 8

GOAL_POOL_P50_MS = 1.0
GOAL_CELL_P50_MS = 0.2
GOAL_PSS_MIB = 5.0
GOAL_RUNS_PER_S = 100.0


@dataclass(frozen=True)
class Plan:
    """Iteration counts; ``--quick`` scales them down for CI smoke runs."""

    pool_bursts: int
    pool_idle: int
    numpy: int
    pandas: int
    plot: int
    session_create: int
    cell_b2b: int
    cell_idle: int
    python_c: int
    bwrap: int
    bwrap_numpy: int
    kernel_start: int
    jupyter_b2b: int
    jupyter_idle: int
    sustained_seconds: float

    @classmethod
    def full(cls) -> Plan:
        return cls(pool_bursts=8, pool_idle=60, numpy=40, pandas=30, plot=20, session_create=40, cell_b2b=500,
                   cell_idle=60, python_c=20, bwrap=20, bwrap_numpy=8, kernel_start=5, jupyter_b2b=200,
                   jupyter_idle=40, sustained_seconds=5.0)

    @classmethod
    def quick(cls) -> Plan:
        return cls(pool_bursts=2, pool_idle=15, numpy=10, pandas=8, plot=5, session_create=10, cell_b2b=100,
                   cell_idle=15, python_c=5, bwrap=5, bwrap_numpy=2, kernel_start=1, jupyter_b2b=50,
                   jupyter_idle=10, sustained_seconds=2.0)


# ---- samples and statistics -------------------------------------------------------


@dataclass
class Series:
    """Latency samples (ms) of one benchmark, and how many of its runs failed."""

    name: str
    mode: str = ""
    samples_ms: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: str = ""

    def fail(self, reason: str) -> None:
        self.failures += 1
        if not self.first_failure:
            self.first_failure = reason[:200]

    @property
    def p50(self) -> float | None:
        return percentile(self.samples_ms, 50) if self.samples_ms else None

    @property
    def p95(self) -> float | None:
        return percentile(self.samples_ms, 95) if self.samples_ms else None

    def summary(self) -> dict[str, Any]:
        return {"mode": self.mode, "n": len(self.samples_ms), "p50_ms": self.p50, "p95_ms": self.p95,
                "min_ms": min(self.samples_ms, default=None), "failures": self.failures,
                "first_failure": self.first_failure or None}


def now_ms() -> float:
    return time.perf_counter_ns() / 1e6


# ---- result checks: a benchmark that silently measures errors is worthless ---------


def problem_with(result: ExecutionResult, expect: Callable[[ExecutionResult], bool], what: str) -> str | None:
    """Why ``result`` is not the success we timed, or None when it is."""
    if result.status != "ok":
        detail = f"{result.error.ename}: {result.error.evalue}" if result.error else result.stderr[-200:]
        return f"status={result.status} {detail}"
    if not expect(result):
        return f"unexpected output (wanted {what}): stdout={result.stdout!r} outputs={[o.output_type for o in result.outputs]}"
    return None


def has_output(result: ExecutionResult, output_type: str, mime: str) -> bool:
    return any(o.output_type == output_type and mime in getattr(o, "data", {}) for o in result.outputs)


def cell_is_two(result: ExecutionResult) -> bool:
    return bool(result.outputs) and getattr(result.outputs[0], "data", {}).get("text/plain") == "2"


CHECKS: dict[str, tuple[Callable[[ExecutionResult], bool], str]] = {
    PRINT_CODE: (lambda r: r.stdout == "1\n", "stdout '1\\n'"),
    NUMPY_CODE: (lambda r: has_output(r, "execute_result", "text/plain"), "an execute_result"),
    PANDAS_CODE: (lambda r: has_output(r, "execute_result", "text/plain"), "an execute_result"),
    PLOT_CODE: (lambda r: has_output(r, "display_data", "image/png"), "a display_data image/png"),
    CELL_CODE: (cell_is_two, "text/plain '2'"),
}


# ---- baselines: plain subprocesses and Jupyter (run with no engine alive, so nothing competes) ----


def time_subprocess(series: Series, argv: list[str], expect: bytes, n: int) -> None:
    """Time ``n`` runs of ``argv``, checking its stdout."""
    for _ in range(n):
        start = now_ms()
        proc = subprocess.run(argv, capture_output=True, timeout=60)
        elapsed = now_ms() - start
        if proc.returncode == 0 and proc.stdout.strip() and proc.stdout.startswith(expect):
            series.samples_ms.append(elapsed)
        else:
            series.fail(f"rc={proc.returncode} stderr={proc.stderr.decode(errors='replace')[-200:]}")


def bwrap_argv(code: str) -> list[str]:
    """A minimal bwrap sandbox around this interpreter: no network, no host /tmp, read-only /usr and Python."""
    prefix = sys.base_prefix
    return ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--ro-bind", prefix, prefix,
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", sys.executable, "-c", code]


def bwrap_problem() -> str | None:
    """Why bwrap cannot run Python here (None when it can): checked once before timing anything."""
    if not shutil.which("bwrap"):
        return "not installed; apt-get install bubblewrap"
    try:
        proc = subprocess.run(bwrap_argv("print(1)"), capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if proc.returncode != 0 or proc.stdout != b"1\n":
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        return f"rc={proc.returncode}: {err[-1] if err else 'no output'}"
    return None


def run_process_baselines(plan: Plan, report: Report) -> None:
    """python3 -c, python3 -I -S -c, and (if it works here) bwrap python3 -c, with and without numpy."""
    python = sys.executable
    for label, argv in (("python3 -c print(1)", [python, "-c", "print(1)"]),
                        ("python3 -I -S -c print(1)", [python, "-I", "-S", "-c", "print(1)"])):
        series = report.add(Series(label, "subprocess"))
        time_subprocess(series, argv, b"1\n", plan.python_c)
    problem = bwrap_problem()
    if problem:
        report.notes.append(f"bwrap: unavailable ({problem})")
        return
    time_subprocess(report.add(Series("bwrap python3 -c print(1)", "subprocess")), bwrap_argv("print(1)"), b"1\n",
                    plan.bwrap)
    numpy_print = "import numpy as np; a = np.random.rand(200,200); print(float((a @ a).sum()))"
    # Any float printed is fine; we only insist the run worked (rc 0, some output).
    time_subprocess(report.add(Series("bwrap python3 numpy", "subprocess")), bwrap_argv(numpy_print), b"", plan.bwrap_numpy)


def run_jupyter_baselines(plan: Plan, report: Report) -> None:
    """Kernel start (start_kernel + wait_for_ready) and execute round trips of 1+1, via jupyter_client + ipykernel."""
    try:
        import ipykernel  # noqa: F401  (only to know it is there; the kernel runs it in its own process)
        from jupyter_client.manager import KernelManager
    except ImportError:
        report.notes.append("jupyter: not installed (pip install sandlot[bench])")
        return
    start = report.add(Series("jupyter kernel start", "start+ready"))
    for _ in range(plan.kernel_start):
        km = KernelManager()
        begin = now_ms()
        try:
            # The kernel's own startup warnings (plain-TCP transport) would clutter the report.
            km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client = km.client()
            client.start_channels()
            client.wait_for_ready(timeout=60)
            start.samples_ms.append(now_ms() - begin)
            client.stop_channels()
        except Exception as exc:  # a kernel that will not start is a failed sample, not a crash
            start.fail(f"{type(exc).__name__}: {exc}")
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    if start.failures and not start.samples_ms:
        return

    km = KernelManager()
    km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        b2b = report.add(Series("jupyter execute 1+1", "back-to-back"))
        idle = report.add(Series("jupyter execute 1+1", "after idle"))
        time_jupyter_execute(client, b2b, plan.jupyter_b2b, pause=0.0)
        time_jupyter_execute(client, idle, plan.jupyter_idle, pause=IDLE_PAUSE)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def time_jupyter_execute(client: Any, series: Series, n: int, pause: float) -> None:
    """Time ``n`` execute_interactive round trips (request to idle), checking the result is 2."""
    for _ in range(n):
        if pause:
            time.sleep(pause)
        results: list[str] = []

        def hook(msg: dict[str, Any], results: list[str] = results) -> None:
            # Collect instead of the default hook, which would print every result to our stdout.
            if msg["header"]["msg_type"] == "execute_result":
                results.append(msg["content"]["data"].get("text/plain", ""))

        begin = now_ms()
        try:
            reply = client.execute_interactive(CELL_CODE, timeout=30, output_hook=hook)
        except Exception as exc:
            series.fail(f"{type(exc).__name__}: {exc}")
            continue
        elapsed = now_ms() - begin
        if reply["content"]["status"] == "ok" and results == ["2"]:
            series.samples_ms.append(elapsed)
        else:
            series.fail(f"status={reply['content']['status']} results={results}")


# ---- sandlot -----------------------------------------------------------------------


async def wait_settled(engine: Engine, timeout: float = 60.0) -> None:
    """Until the pools (the default one and the lean zygote's, once its first run started it) are full and
    background teardown is done, so the next run starts from a quiet machine."""
    deadline = time.monotonic() + timeout
    pools = [pool for pool in (engine.pool, engine.lean_pool) if pool is not None]
    while not (all(len(pool.ready) >= pool.target and pool.starting == 0 for pool in pools)
               and engine.sandboxes_alive == sum(len(pool.ready) for pool in pools) + len(engine.sessions)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"pool did not settle in {timeout:.0f} s: {engine!r}")
        await asyncio.sleep(0.002)


async def timed_run(series: Series, code: str, run: Callable[[str], Awaitable[ExecutionResult]]) -> None:
    """One run of ``code`` through ``run``, timed and checked: a failure is counted, never timed."""
    expect, what = CHECKS[code]
    begin = now_ms()
    try:
        result = await run(code)
    except Exception as exc:
        series.fail(f"{type(exc).__name__}: {exc}")
        return
    elapsed = now_ms() - begin
    problem = problem_with(result, expect, what)
    if problem:
        series.fail(problem)
    else:
        series.samples_ms.append(elapsed)


async def timed_execute(engine: Engine, series: Series, code: str) -> None:
    """One one-shot run, timed and checked."""
    await timed_run(series, code, engine.execute)


async def bench_pool_runs(engine: Engine, plan: Plan, report: Report) -> None:
    """print(1) back-to-back (bursts of BURST from a full pool) and after idle; then numpy, pandas, matplotlib."""
    taken_before, executed_before = engine.pool.taken, engine.stats["runs"]
    b2b = report.add(Series("pool print(1)", "back-to-back"))
    for _ in range(plan.pool_bursts):
        await wait_settled(engine)
        for _ in range(BURST):
            await timed_execute(engine, b2b, PRINT_CODE)
    # The same run with no refill competing and no idle pause: separates refill contention from vCPU wake-up.
    quiet = report.add(Series("pool print(1)", "pool full"))
    for _ in range(plan.pool_idle):
        await wait_settled(engine)
        await timed_execute(engine, quiet, PRINT_CODE)
    idle = report.add(Series("pool print(1)", "after idle"))
    for _ in range(plan.pool_idle):
        await wait_settled(engine)
        await asyncio.sleep(IDLE_PAUSE)
        await timed_execute(engine, idle, PRINT_CODE)
    for label, code, n in (("pool numpy 200x200 matmul", NUMPY_CODE, plan.numpy),
                           ("pool pandas groupby head", PANDAS_CODE, plan.pandas),
                           ("pool matplotlib PNG", PLOT_CODE, plan.plot)):
        series = report.add(Series(label, "pool full"))
        for _ in range(n):
            await wait_settled(engine)
            await timed_execute(engine, series, code)
    # Every timed run should have found a warm sandbox; say so if some had to start one on demand.
    executed = engine.stats["runs"] - executed_before
    taken = engine.pool.taken - taken_before
    if taken < executed:
        report.notes.append(f"warning: {executed - taken} of {executed} pool runs found the pool empty")


async def bench_sessions(engine: Engine, plan: Plan, report: Report) -> None:
    """Session create (close not timed), then 1+1 cells in one session, back-to-back and after idle."""
    create = report.add(Series("session create", "pool full"))
    for _ in range(plan.session_create):
        await wait_settled(engine)
        begin = now_ms()
        try:
            session = await engine.create_session()
        except Exception as exc:
            create.fail(f"{type(exc).__name__}: {exc}")
            continue
        create.samples_ms.append(now_ms() - begin)
        await engine.close_session(session.id)

    await wait_settled(engine)
    session = await engine.create_session()
    try:
        await session_cell(session, Series("warm-up"))  # the first cell sends the environment; not what we measure
        b2b = report.add(Series("session cell 1+1", "back-to-back"))
        for _ in range(plan.cell_b2b):
            await session_cell(session, b2b)
        idle = report.add(Series("session cell 1+1", "after idle"))
        for _ in range(plan.cell_idle):
            await asyncio.sleep(IDLE_PAUSE)
            await session_cell(session, idle)
    finally:
        await engine.close_session(session.id)


async def session_cell(session: Any, series: Series) -> None:
    """One 1+1 cell, timed and checked."""
    await timed_run(series, CELL_CODE, session.execute)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, so a sandbox's helper processes (if any) count towards its memory."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return found


def smaps_rollup_kb(pid: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/smaps_rollup (Rss, Pss, Private_Dirty, ...)."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1])
    return fields


async def measure_idle_pss(engine: Engine, report: Report) -> None:
    """Mean Pss (and Rss, private) per sandbox of the full, idle warm pool."""
    await wait_settled(engine)
    await asyncio.sleep(0.5)  # let the last sandboxes finish warming up and go quiet
    pids = [sandbox.pid for sandbox in engine.pool.ready]
    totals = {"Pss": 0, "Rss": 0, "Private": 0}
    processes = 0
    try:
        for pid in pids:
            for member in process_tree(pid):
                fields = smaps_rollup_kb(member)
                processes += 1
                totals["Pss"] += fields.get("Pss", 0)
                totals["Rss"] += fields.get("Rss", 0)
                totals["Private"] += fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    except OSError as exc:
        report.notes.append(f"idle PSS: unavailable ({type(exc).__name__}: {exc}; needs root)")
        return
    if not pids:
        report.notes.append("idle PSS: unavailable (the pool is empty)")
        return
    report.pss = {"sandboxes": len(pids), "processes": processes,
                  **{f"{k.lower()}_mib_per_sandbox": v / 1024 / len(pids) for k, v in totals.items()}}


async def sustained(config: EngineConfig, seconds: float, concurrency: int) -> dict[str, Any]:
    """One-shot print(1) runs from ``concurrency`` tasks for ``seconds``: completed runs/s, errors, latency."""
    latencies = Series("sustained")
    async with Engine(config) as engine:
        await wait_settled(engine)
        taken_before = engine.pool.taken
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                await timed_execute(engine, latencies, PRINT_CODE)

        begin = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - begin
        from_pool = engine.pool.taken - taken_before
    ok = len(latencies.samples_ms)
    return {"pool_size": config.pool_size, "concurrency": concurrency, "seconds": elapsed, "runs": ok,
            "errors": latencies.failures, "first_error": latencies.first_failure or None,
            "runs_per_s": ok / elapsed, "from_pool": from_pool, "p50_ms": latencies.p50, "p95_ms": latencies.p95}


async def run_sandlot(plan: Plan, report: Report) -> None:
    """Every sandlot phase: latency with a big pool, idle PSS, then sustained throughput per pool size."""
    begin = now_ms()
    async with Engine(EngineConfig(pool_size=LATENCY_POOL_SIZE)) as engine:
        report.info["isolation"] = engine.isolation
        await wait_settled(engine)
        report.info["engine_start_to_full_pool_ms"] = round(now_ms() - begin, 1)
        await measure_idle_pss(engine, report)
        await bench_pool_runs(engine, plan, report)
        await bench_sessions(engine, plan, report)
    default_pool = EngineConfig().pool_size
    for pool_size in sorted({16, default_pool}, reverse=True):
        result = await sustained(EngineConfig(pool_size=pool_size), plan.sustained_seconds, SUSTAINED_CONCURRENCY)
        result["label"] = f"pool_size={pool_size}" + (" (engine default)" if pool_size == default_pool else "")
        report.sustained.append(result)


# ---- the report --------------------------------------------------------------------


@dataclass
class Report:
    """Everything measured in one run, printed as text and optionally written as JSON."""

    info: dict[str, Any] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pss: dict[str, Any] | None = None
    sustained: list[dict[str, Any]] = field(default_factory=list)
    ratios: list[dict[str, Any]] = field(default_factory=list)
    goals: list[dict[str, Any]] = field(default_factory=list)

    def add(self, series: Series) -> Series:
        self.series.append(series)
        return series

    def find(self, name: str, mode: str | None = None) -> Series | None:
        for series in self.series:
            if series.name == name and (mode is None or series.mode == mode):
                return series
        return None

    def p50(self, name: str, mode: str | None = None) -> float | None:
        series = self.find(name, mode)
        return series.p50 if series else None

    @property
    def failures(self) -> int:
        return sum(s.failures for s in self.series) + sum(r["errors"] for r in self.sustained)

    def best_sustained(self) -> dict[str, Any] | None:
        return max(self.sustained, key=lambda r: r["runs_per_s"], default=None)

    def to_json(self) -> dict[str, Any]:
        return {"info": self.info, "latency": [{"name": s.name, **s.summary()} for s in self.series],
                "notes": self.notes, "idle_pss": self.pss, "sustained": self.sustained, "ratios": self.ratios,
                "goals": self.goals, "failures": self.failures}


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def compute_ratios(report: Report) -> None:
    """How many times faster sandlot is than each baseline, compared at p50 (only when both were measured)."""
    pairs = [
        ("pool print(1)", "back-to-back", "python3 -c print(1)", None, "pool print(1) (back-to-back) vs python3 -c"),
        ("pool print(1)", "after idle", "python3 -c print(1)", None, "pool print(1) (after idle) vs python3 -c"),
        ("pool print(1)", "back-to-back", "python3 -I -S -c print(1)", None, "pool print(1) (back-to-back) vs python3 -I -S -c"),
        ("pool print(1)", "back-to-back", "bwrap python3 -c print(1)", None, "pool print(1) (back-to-back) vs bwrap python3 -c"),
        ("pool print(1)", "after idle", "bwrap python3 -c print(1)", None, "pool print(1) (after idle) vs bwrap python3 -c"),
        ("pool numpy 200x200 matmul", None, "bwrap python3 numpy", None, "numpy run vs bwrap python with numpy"),
        ("session cell 1+1", "back-to-back", "jupyter execute 1+1", "back-to-back",
         "session 1+1 vs a Jupyter execute (both back-to-back)"),
        ("session cell 1+1", "after idle", "jupyter execute 1+1", "after idle",
         "session 1+1 vs a Jupyter execute (both after idle)"),
        ("session create", None, "jupyter kernel start", None, "session create vs a Jupyter kernel start"),
    ]
    for ours, our_mode, theirs, their_mode, label in pairs:
        a, b = report.p50(ours, our_mode), report.p50(theirs, their_mode)
        if a and b:
            report.ratios.append({"comparison": label, "sandlot_p50_ms": a, "baseline_p50_ms": b, "speedup": b / a})


def compute_goals(report: Report) -> None:
    """PASS/MISS per project goal, from the measured numbers only."""
    best = report.best_sustained()
    pss = report.pss["pss_mib_per_sandbox"] if report.pss else None
    goals = [
        ("pool print(1) p50 (back-to-back)", report.p50("pool print(1)", "back-to-back"), "<", GOAL_POOL_P50_MS, "ms",
         f"pool full: {fmt(report.p50('pool print(1)', 'pool full'))} ms, "
         f"after idle: {fmt(report.p50('pool print(1)', 'after idle'))} ms"),
        ("session 1+1 p50 (back-to-back)", report.p50("session cell 1+1", "back-to-back"), "<", GOAL_CELL_P50_MS, "ms",
         f"after idle: {fmt(report.p50('session cell 1+1', 'after idle'))} ms"),
        ("idle PSS per pooled sandbox", pss, "<", GOAL_PSS_MIB, "MiB", ""),
        ("sustained one-shot runs/s", best["runs_per_s"] if best else None, ">=", GOAL_RUNS_PER_S, "runs/s",
         f"best of {len(report.sustained)}: {best['label']}" if best else ""),
    ]
    for name, value, op, target, unit, note in goals:
        met = value is not None and (value < target if op == "<" else value >= target)
        verdict = "PASS" if met else ("MISS" if value is not None else "MISS (not measured)")
        report.goals.append({"goal": name, "value": value, "op": op, "target": target, "unit": unit,
                             "verdict": verdict, "note": note})


def print_report(report: Report) -> None:
    """The plain-text report."""
    print("sandlot core benchmark")
    for key, value in report.info.items():
        print(f"  {key}: {value}")
    print()
    print("latency (ms)")
    print(f"  modes: back-to-back = bursts of {BURST} from a full pool of {LATENCY_POOL_SIZE}, no pause (the background")
    print("         refill competes); pool full = pool full and teardown done, then one run, no pause;")
    print(f"         after idle = pool full, then {IDLE_PAUSE * 1000:.0f} ms of sleep (pays the vCPU wake-up) before each run")
    print(f"  {'benchmark':<30} {'mode':<14} {'n':>5} {'p50':>9} {'p95':>9} {'min':>9} {'fail':>5}")
    for s in report.series:
        print(f"  {s.name:<30} {s.mode:<14} {len(s.samples_ms):>5} {fmt(s.p50):>9} {fmt(s.p95):>9} "
              f"{fmt(min(s.samples_ms, default=None)):>9} {s.failures:>5}")
        if s.first_failure:
            print(f"    first failure: {s.first_failure}")
    for note in report.notes:
        print(f"  {note}")
    print()
    print("idle memory")
    if report.pss:
        p = report.pss
        print(f"  {p['sandboxes']} pooled sandboxes ({p['processes']} processes): "
              f"PSS {p['pss_mib_per_sandbox']:.2f} MiB, RSS {p['rss_mib_per_sandbox']:.2f} MiB, "
              f"private {p['private_mib_per_sandbox']:.2f} MiB per sandbox")
    else:
        print("  not measured (see notes above)")
    print()
    print(f"sustained one-shot print(1) ({SUSTAINED_CONCURRENCY} concurrent tasks, {os.cpu_count()} CPUs)")
    for r in report.sustained:
        print(f"  {r['label']:<30} {r['runs_per_s']:8.1f} runs/s  ({r['runs']} runs in {r['seconds']:.1f} s, "
              f"{r['errors']} errors, {r['from_pool']} from the pool, p50 {fmt(r['p50_ms'])} ms, p95 {fmt(r['p95_ms'])} ms)")
        if r["first_error"]:
            print(f"    first error: {r['first_error']}")
    best = report.best_sustained()
    if best:
        print(f"  kept: {best['label']} (the higher runs/s)")
    print()
    print("ratios (p50 vs p50)")
    for r in report.ratios:
        print(f"  {r['comparison']:<58} {r['speedup']:8.1f}x faster "
              f"({fmt(r['sandlot_p50_ms'])} ms vs {fmt(r['baseline_p50_ms'])} ms)")
    if not report.ratios:
        print("  none (baselines not measured)")
    print()
    print("goals")
    for g in report.goals:
        value = fmt(g["value"], 3 if g["unit"] == "ms" else 2)
        note = f"  [{g['note']}]" if g["note"] else ""
        print(f"  {g['verdict']:<5} {g['goal']:<36} {value:>9} {g['unit']:<7} (goal {g['op']} {g['target']} {g['unit']}){note}")
    print()
    print(f"failed runs: {report.failures}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (CI smoke run, under ~40 s)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON to PATH")
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan.full()
    report = Report(info={"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                          "euid": os.geteuid(), "plan": "quick" if args.quick else "full"})
    begin = time.monotonic()
    # Baselines first, with no engine alive: its background refills would otherwise slow them down.
    run_process_baselines(plan, report)
    run_jupyter_baselines(plan, report)
    asyncio.run(run_sandlot(plan, report))
    report.info["benchmark_seconds"] = round(time.monotonic() - begin, 1)
    compute_ratios(report)
    compute_goals(report)
    print_report(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"plan": asdict(plan), **report.to_json()}, f, indent=2)
        print(f"wrote {args.json}")
    # Goals are informational; failed runs mean the numbers above are not trustworthy.
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
