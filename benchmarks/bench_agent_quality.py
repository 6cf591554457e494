"""Agent quality: how often a small local model answers right, alone and through sandlot's agent endpoint.

One run, one real model (Qwen2.5-Coder-0.5B-Instruct on llama.cpp, ``sandlot.testing.llm``), two arms
on the same questions (``agent_questions.py``: 50 questions across eight kinds that need computation):

  alone    the question, as the only message, straight to the model's own OpenAI-compatible endpoint;
  sandlot  the same message to ``sandlot serve``'s ``POST /v1/chat/completions``, whose upstream is that
           same model (``--action-format``, default ``code_blocks``): sandlot runs the model's code in
           its sandboxes and loops until the model answers.

Both arms: ``temperature=0``, ``seed=42``, the same ``max_tokens`` per model call, no system message
from the client, and one grading rule (``agent_questions.grade``: the last number of the reply that
is not one of the question's own numbers; the last weekday named). The questions alternate arms, one
question at a time, on one model server shared by both.

Printed: accuracy per arm (and per kind), mean code steps, mean wall time per question, how each run
stopped (the model's ``finish_reason`` alone; sandlot's ``stop_reason``), the misses, and a PASS/MISS
line for the goals of issue #12 (sandlot >= 80 % right, and >= 3x the model alone). The exit status
is 1 if a request failed (an HTTP error from either endpoint), 0 otherwise, whatever the accuracy.

Run it as root inside the containment wrapper (sandlot's sandboxes need root):
    python3 scripts/contained.py python3 benchmarks/bench_agent_quality.py [--quick] [--json out.json]
The full run takes 20-40 minutes on 2 cores; ``--quick`` (3 questions, a CI smoke run) about 2.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import openai
from agent_questions import QUICK, Question, all_questions, answer_value, grade

from sandlot.testing.llm import LlamaServer, qwen_model_path, unavailable_reason
from sandlot.testing.serving import ServerProcess

MODEL = "qwen"
SEED = 42
POOL_SIZE = 2
GOAL_ACCURACY = 0.80
GOAL_RATIO = 3.0


@dataclass
class Answer:
    """One arm's answer to one question."""

    reply: str
    correct: bool
    wall: float
    stop: str
    """alone: the model's finish_reason; sandlot: its stop_reason (or ``error: ...``)."""
    steps: list[dict[str, Any]] = field(default_factory=list)
    extracted: str | None = None
    tokens: int = 0
    """Prompt and completion tokens of every model call the answer took."""


@contextlib.contextmanager
def stderr_to(path: str) -> Iterator[None]:
    """Send this process's fd 2 (llama.cpp logs every request there) to a file, and back afterwards."""
    saved = os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def sandlot_server(model_url: str, action_format: str, directory: str, candidates: int) -> ServerProcess:
    """``sandlot serve`` with the local model as its only upstream; the agent guards at their defaults but
    ``candidates`` (self-consistency: 1 is off, the default)."""
    config_path = os.path.join(directory, "sandlot.toml")
    with open(config_path, "w") as f:
        f.write(f'[engine]\npool_size = {POOL_SIZE}\n\n[agent]\ncandidates = {candidates}\n\n'
                f'[[models]]\nname = "{MODEL}"\nbase_url = "{model_url}"\naction_format = "{action_format}"\n'
                f'timeout = 300\n')
    # Its log in a file, not a pipe nobody reads: a full pipe would block the server.
    return ServerProcess("--config", config_path, "--log-level", "warning", pool_ready=POOL_SIZE,
                         log=Path(directory) / "sandlot.log")


def ask(client: openai.OpenAI, question: Question, max_tokens: int, *, through_sandlot: bool,
        temperature: float = 0.0, seed: int = SEED) -> Answer:
    started = time.monotonic()
    try:
        response = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": question.text}], temperature=temperature, seed=seed,
            max_tokens=max_tokens)
    except openai.APIError as exc:
        return Answer("", False, time.monotonic() - started, f"error: {type(exc).__name__}: {exc}"[:200])
    wall = time.monotonic() - started
    reply = response.choices[0].message.content or ""
    if through_sandlot:
        extra = (response.model_extra or {})["sandlot"]
        stop, steps = str(extra["stop_reason"]), list(extra["steps"])
    else:
        stop, steps = str(response.choices[0].finish_reason), []
    value = answer_value(question, reply)
    tokens = response.usage.total_tokens if response.usage is not None else 0
    return Answer(reply, grade(question, reply), wall, stop, steps, None if value is None else str(value), tokens)


def mark(answer: Answer) -> str:
    return "right" if answer.correct else "WRONG"


def short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def print_run(answer: Answer) -> None:
    """The steps of one sandlot run and its reply, indented."""
    for step in answer.steps:
        shown = step["stdout"] or (step["error"] or {}).get("ename", "") or step["status"]
        print(f"      step {step['index']} [{step['status']}] {short(step['code'], 110)!r} -> {short(shown, 60)!r}")
    print(f"      reply: {short(answer.reply, 300)!r}", flush=True)


def summary(name: str, answers: list[Answer]) -> dict[str, Any]:
    right = sum(a.correct for a in answers)
    return {"arm": name, "right": right, "total": len(answers), "accuracy": right / len(answers),
            "mean_steps": statistics.fmean(len(a.steps) for a in answers),
            "mean_wall_s": statistics.fmean(a.wall for a in answers),
            "mean_tokens": statistics.fmean(a.tokens for a in answers),
            "stops": dict(collections.Counter(a.stop.split(":")[0] for a in answers).most_common())}


def main() -> int:
    # The server this starts keeps its sessions only while it runs: it must not wait on (or be refused by) the
    # data directory of a `sandlot serve` the developer may be running (one server per data dir).
    os.environ.setdefault("SANDLOT_DATA_DIR", "")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)} (a CI smoke run, ~2 min)")
    parser.add_argument("--ids", help="comma-separated question ids to run (default: all)")
    parser.add_argument("--action-format", default="code_blocks", choices=("code_blocks", "tool_calls", "auto"))
    parser.add_argument("--max-tokens", type=int, default=768, help="per model call, both arms (default 768)")
    parser.add_argument("--sandlot-only", action="store_true",
                        help="skip the model-alone arm (for trying changes; the goals need both arms)")
    parser.add_argument("--candidates", type=int, default=1,
                        help="the agent's self-consistency: programs sampled per code turn (default 1: off)")
    parser.add_argument("--samples", type=int, default=1,
                        help="ceiling probe: ask each question this many times through sandlot, the first at "
                             "temperature 0 (the measurement), the others at --temperature with seeds of their own, "
                             "and print how many questions any of them got right (pass@K: what no choice among these "
                             "answers, without knowing the right one, can beat) and the majority's accuracy")
    parser.add_argument("--temperature", type=float, default=0.8, help="the extra samples' temperature (default 0.8)")
    parser.add_argument("--verbose", action="store_true", help="print every sandlot run's steps and reply")
    parser.add_argument("--json", metavar="PATH", help="also write every answer and the summary as JSON")
    args = parser.parse_args()
    if (reason := unavailable_reason()) is not None:
        print(f"bench_agent_quality: skipped, {reason}")
        return 0
    questions = all_questions()
    wanted = QUICK if args.quick else tuple(args.ids.split(",")) if args.ids else None
    if wanted is not None:
        unknown = set(wanted) - {q.id for q in questions}
        if unknown:
            raise SystemExit(f"no such question: {', '.join(sorted(unknown))}")
        questions = [q for q in questions if q.id in wanted]

    started = time.monotonic()
    results: list[tuple[Question, Answer, Answer]] = []
    extra_samples: dict[str, list[Answer]] = {}
    # The prompt cache off, as in the tests (see LlamaServer): each reply depends on its request alone,
    # not on the requests before it, so one question's result does not change with the others'.
    # Slower (every turn evaluates its whole prompt), and greedy replies do differ with the cache on.
    with tempfile.TemporaryDirectory() as tmp, stderr_to(os.path.join(tmp, "llama.log")), \
            LlamaServer(qwen_model_path(), n_ctx=8192) as llm:
        with sandlot_server(llm.base_url, args.action_format, tmp, args.candidates) as server:
            with openai.OpenAI(base_url=llm.base_url, api_key="none", timeout=600, max_retries=0) as alone, \
                    openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", timeout=600,
                                  max_retries=0) as agent:
                print(f"agent quality: {len(questions)} questions, Qwen2.5-Coder-0.5B-Instruct (llama.cpp, "
                      f"{llm.threads} threads), action format {args.action_format}, temperature 0, seed {SEED}, "
                      f"max_tokens {args.max_tokens}, candidates {args.candidates}; {os.cpu_count()} CPUs\n", flush=True)
                for number, question in enumerate(questions, 1):
                    by_model = (Answer("", False, 0.0, "skipped") if args.sandlot_only else
                                ask(alone, question, args.max_tokens, through_sandlot=False))
                    by_agent = ask(agent, question, args.max_tokens, through_sandlot=True)
                    results.append((question, by_model, by_agent))
                    print(f"{number:>3} {question.id:<22} expected {short(question.shown, 24):<24} "
                          f"alone {mark(by_model)} {by_model.wall:5.1f}s | sandlot {mark(by_agent)} "
                          f"{by_agent.wall:5.1f}s {len(by_agent.steps)} steps {by_agent.stop}", flush=True)
                    if args.samples > 1:
                        more = [ask(agent, question, args.max_tokens, through_sandlot=True,
                                    temperature=args.temperature, seed=SEED + i) for i in range(1, args.samples)]
                        extra_samples[question.id] = more
                        print(f"      samples at temperature {args.temperature:g}: "
                              f"{', '.join(f'{a.extracted} ({mark(a)})' for a in more)}", flush=True)
                    if args.verbose:
                        print_run(by_agent)
    elapsed = time.monotonic() - started

    arms = {"alone": [r[1] for r in results], "sandlot": [r[2] for r in results]}
    summaries = {name: summary(name, answers) for name, answers in arms.items()}
    print(f"\n  {'arm':<8} {'right':>9} {'accuracy':>9} {'code steps':>11} {'wall s':>7} {'tokens':>7}   stopped")
    for s in summaries.values():
        stops = ", ".join(f"{reason} {count}" for reason, count in s["stops"].items())
        print(f"  {s['arm']:<8} {s['right']:>4} / {s['total']:<3} {s['accuracy']:>8.0%} {s['mean_steps']:>11.2f} "
              f"{s['mean_wall_s']:>7.1f} {s['mean_tokens']:>7.0f}   {stops}")
    print("\n  by kind (right: alone / sandlot)")
    for kind in dict.fromkeys(q.kind for q, _, _ in results):
        rows = [(a, b) for q, a, b in results if q.kind == kind]
        print(f"    {kind:<15} {sum(a.correct for a, _ in rows)} / {sum(b.correct for _, b in rows)} of {len(rows)}")

    misses = [(q, b) for q, _, b in results if not b.correct]
    if misses:
        print("\n  sandlot's misses")
    for question, answer in misses:
        print(f"    {question.id}: expected {question.shown}, extracted {answer.extracted}, stop {answer.stop}, "
              f"{len(answer.steps)} steps")
        print_run(answer)

    ceiling: dict[str, Any] = {}
    if args.samples > 1:
        any_right = majority_right = 0
        for question, _, first in results:
            sampled = [first, *extra_samples[question.id]]
            any_right += any(a.correct for a in sampled)
            votes = collections.Counter(a.extracted for a in sampled if a.extracted is not None)
            if votes:
                top = votes.most_common(1)[0][0]  # ties: the earliest answer of the tied ones, the greedy one first
                majority_right += next(a.correct for a in sampled if a.extracted == top)
        ceiling = {"samples": args.samples, "temperature": args.temperature, "any_right": any_right,
                   "majority_right": majority_right}
        print(f"\n  ceiling probe, {args.samples} samples a question (the first at temperature 0): right in any "
              f"{any_right} / {len(results)} (pass@{args.samples}), by majority {majority_right} / {len(results)}")

    agent_acc, alone_acc = summaries["sandlot"]["accuracy"], summaries["alone"]["accuracy"]
    if args.quick or wanted is not None:
        print(f"\n  ({len(results)} chosen questions: a smoke run, not the measurement the goals are about)")
    print(f"\n  goal: sandlot >= {GOAL_ACCURACY:.0%} right: {agent_acc:.0%} "
          f"{'PASS' if agent_acc >= GOAL_ACCURACY else 'MISS'}")
    if args.sandlot_only:
        print(f"  goal: sandlot >= {GOAL_RATIO:g}x the model alone: not measured (--sandlot-only)")
    elif alone_acc:
        ratio = agent_acc / alone_acc
        print(f"  goal: sandlot >= {GOAL_RATIO:g}x the model alone: {ratio:.2f}x {'PASS' if ratio >= GOAL_RATIO else 'MISS'}")
    else:  # a ratio to nothing says nothing: say so rather than print "inf"
        print(f"  goal: sandlot >= {GOAL_RATIO:g}x the model alone: the model alone got none right; sandlot "
              f"{summaries['sandlot']['right']} ({'PASS, vacuously' if agent_acc else 'MISS'})")
    print(f"  total {elapsed / 60:.1f} min")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": {"action_format": args.action_format, "max_tokens": args.max_tokens, "seed": SEED,
                                  "candidates": args.candidates,
                                  "questions": len(results), "cpus": os.cpu_count()},
                       "summary": summaries, "ceiling": ceiling,
                       "answers": [{"id": q.id, "kind": q.kind, "expected": q.shown,
                                    "alone": asdict(a), "sandlot": asdict(b),
                                    "samples": [asdict(x) for x in extra_samples.get(q.id, [])]}
                                   for q, a, b in results]}, f, indent=2)
    # Wrong answers are the measurement; a request that failed is not: the numbers would not be trustworthy.
    failed = [q.id for q, a, b in results if a.stop.startswith("error") or b.stop.startswith("error")]
    if failed:
        print(f"  requests that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
