"""Fairness between tenants, end to end: while one API key floods, another's paced runs stay within 3x of idle.

The goal of issue #10, measured as ``benchmarks/bench_fairness.py`` measures it (the same code): a real
``sandlot serve`` in a process of its own (so the clients here do not share its interpreter), two keys, real
httpx clients. Key B posts one-shot runs every 200 ms on the idle server, then while key A runs six spinning
sessions and twelve back-to-back one-shot clients, in three turns of each (``measure_interleaved``): load from
outside that comes and goes falls on both sides of the ratio, where one idle phase before one flood phase
compared two moments of this shared machine. When outside load still spoils one measurement, it is taken once
more (the goal stays 3x).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fairness.py"
_spec = importlib.util.spec_from_file_location("bench_fairness", BENCH)
assert _spec is not None and _spec.loader is not None
bench_fairness = importlib.util.module_from_spec(_spec)
sys.modules["bench_fairness"] = bench_fairness  # its dataclasses look their module up there
_spec.loader.exec_module(bench_fairness)


@pytest.mark.skipif(os.geteuid() != 0, reason="the cpu controller needs root")
def test_a_flooding_key_leaves_another_keys_paced_runs_within_3x_of_idle() -> None:
    attempts = []
    with bench_fairness.serve() as url:
        for _ in range(2):
            result = asyncio.run(bench_fairness.measure_interleaved(url, blocks=3, samples=8))
            attempts.append(result.summary())
            assert not result.paced_errors, result.paced_errors
            assert result.spinners_running == 6, attempts  # the flood was really on
            if result.met:
                break
    assert result.met, "\n".join(attempts)
