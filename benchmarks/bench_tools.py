"""Programmatic tool calling against classic tool calling, on a task that needs N = 20 tool calls.

The task: look up 20 records and report the two largest values. Both ways run
through sandlot's agent loop with the same scripted model (fixed latency per
turn) and the same host tool:

- classic: the tool is offered to the model as an ordinary tool call; the model
  calls it once per turn (20 turns), then answers: every result goes back into
  its context, and every turn resends the whole conversation.
- programmatic: the model writes one piece of code that calls the tool 20 times
  (concurrently, with ``parallel_map``) and prints only the two largest; then it
  answers: two model turns.

Printed: model turns, tokens sent to the model (the conversation and tool
definitions of every request, counted as characters / 4, as the scripted model
does), wall time, and the ratios. Run it as root:
    python3 scripts/contained.py python3 benchmarks/bench_tools.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from sandlot import Engine, EngineConfig
from sandlot.agent.config import AgentSettings, UpstreamModel
from sandlot.agent.openai_format import ChatRequest
from sandlot.agent.prompts import EXAMPLE_CALL_ID
from sandlot.agent.service import AgentService
from sandlot.testing import Reply, ScriptedUpstream
from sandlot.tools import ToolRegistry, tool_from_callable

N = 20
LATENCY = 0.05
TOOL_LATENCY = 0.01
QUESTION = f"Look up records 1 to {N} and tell me the two largest values."


async def lookup(record_id: int) -> dict[str, int]:
    """The record with this id (a service that takes 10 ms to answer)."""
    await asyncio.sleep(TOOL_LATENCY)
    return {"id": record_id, "value": (record_id * 7919) % 1000}


EXPECTED = sorted((i * 7919) % 1000 for i in range(1, N + 1))[-2:]


def classic_script() -> list[Any]:
    """One tool call per turn, then the answer (read from the results the model was sent)."""
    turns: list[Any] = [Reply(tool_calls=[("lookup", {"record_id": i})]) for i in range(1, N + 1)]

    def answer(body: dict[str, Any]) -> Reply:
        values = [json.loads(m["content"])["value"] for m in body["messages"]
                  if m.get("role") == "tool" and m["tool_call_id"] != EXAMPLE_CALL_ID]  # not sandlot's worked example
        return Reply(f"The two largest values are {sorted(values)[-2:]}.")

    return [*turns, answer]


def programmatic_script() -> list[Any]:
    code = ("from sandlot.tools import lookup, parallel_map\n"
            f"records = parallel_map(lookup, range(1, {N + 1}))\n"
            "print(sorted(r['value'] for r in records)[-2:])")

    def answer(body: dict[str, Any]) -> Reply:
        # The tool message holds the printed output, "[a, b]": the model reads the list.
        printed = body["messages"][-1]["content"].splitlines()[0]
        return Reply(f"The two largest values are {ast.literal_eval(printed)}.")

    return [Reply(tool_code=code), answer]


async def run_once(way: str) -> dict[str, float]:
    registry = ToolRegistry([tool_from_callable(lookup, expose="tool_call" if way == "classic" else "code")])
    script = classic_script() if way == "classic" else programmatic_script()
    with ScriptedUpstream(script, latency=LATENCY) as model:
        async with Engine(EngineConfig(preload=(), pool_size=2), tools=registry) as engine:
            service = AgentService(engine, (UpstreamModel(name="m", base_url=model.base_url, action_format="tool_calls"),),
                                   AgentSettings(max_steps=N + 5, max_wall_time=120))
            request = ChatRequest(model="m", messages=[{"role": "user", "content": QUESTION}])
            upstream = service.upstream_for("m")
            started = time.perf_counter()
            session, _ = await service.open_session(request, None)
            response = await service.complete(request, session, upstream, kept=False)
            elapsed = time.perf_counter() - started
            await engine.close_session(session.id)
            await service.close()
        tokens = sum(len(json.dumps({"messages": r["messages"], "tools": r.get("tools", [])})) // 4
                     for r in model.requests)
        answer = response["choices"][0]["message"]["content"]
        calls = len(response["sandlot"]["tool_calls"]) + sum(len(s["tool_calls"]) for s in response["sandlot"]["steps"])
    assert all(str(v) in answer for v in EXPECTED), (way, answer, EXPECTED)
    assert calls == N, (way, calls)
    return {"turns": len(model.requests), "tokens": tokens, "seconds": elapsed, "tool_calls": calls}


async def main_async(reps: int) -> dict[str, dict[str, float]]:
    results: dict[str, list[dict[str, float]]] = {"classic": [], "programmatic": []}
    for _ in range(reps):
        for way in results:
            results[way].append(await run_once(way))
    return {way: {key: statistics.median(run[key] for run in runs) for key in runs[0]} for way, runs in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition (a CI smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = parser.parse_args()
    summary = asyncio.run(main_async(1 if args.quick else 3))
    classic, programmatic = summary["classic"], summary["programmatic"]
    print(f"task: {N} tool calls (look up {N} records, report the two largest); scripted model, "
          f"{LATENCY * 1000:.0f} ms per turn; tool {TOOL_LATENCY * 1000:.0f} ms per call")
    print(f"  {'':<14} {'model turns':>12} {'tokens sent':>12} {'wall time':>10} {'tool calls':>11}")
    for name, row in summary.items():
        print(f"  {name:<14} {row['turns']:>12.0f} {row['tokens']:>12.0f} {row['seconds'] * 1000:>8.0f}ms "
              f"{row['tool_calls']:>11.0f}")
    print(f"  ratio (classic / programmatic): turns {classic['turns'] / programmatic['turns']:.1f}x, "
          f"tokens {classic['tokens'] / programmatic['tokens']:.1f}x, "
          f"wall time {classic['seconds'] / programmatic['seconds']:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
