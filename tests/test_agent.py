"""The agent endpoint, black-box: the official ``openai`` SDK against a real server whose upstream is the
shipped scripted model (``sandlot.testing.upstream``), on loopback ports, with real sandboxes.

The script decides what the "model" says; ``ScriptedUpstream.requests`` shows what the model was
shown, so each test checks both sides of the loop: what the client gets and what went upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from conftest import API_KEY, HOST_SECRET, TIGHT_LIMITS, running_server
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from test_server import wait_until

from sandlot import EngineConfig, Limits
from sandlot.agent.config import ActionFormat, AgentSettings, UpstreamModel
from sandlot.server import ServerConfig
from sandlot.testing.upstream import Reply, ScriptedUpstream

ScriptItem = Reply | Callable[[dict[str, Any]], Reply]
SETTINGS = AgentSettings(max_steps=3, max_wall_time=20)
SETTINGS_6 = AgentSettings(max_steps=6, max_wall_time=20)
STEP_KEYS = {"index", "code", "status", "votes", "stdout", "stderr", "outputs", "error", "duration_ms", "tool_calls"}
FINAL = "Final answer, without code."
OTHER_KEY = "other-key-fedcba9876"
UPSTREAM_KEY_ENV = "SANDLOT_TEST_UPSTREAM_KEY"
UPSTREAM_KEY = "sk-upstream-only-4d2e81b7"
WEATHER_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


# ---- helpers -------------------------------------------------------------------------

@dataclass
class Agent:
    url: str
    upstream: ScriptedUpstream
    client: openai.OpenAI
    http: httpx.Client


@contextlib.contextmanager
def agent(script: Sequence[ScriptItem], *, action_format: ActionFormat = "tool_calls", latency: float = 0.0,
          settings: AgentSettings = SETTINGS, api_keys: tuple[str, ...] = (), key: str = "none",
          server: dict[str, Any] | None = None, limits: Limits = TIGHT_LIMITS, **model: Any) -> Iterator[Agent]:
    """A scripted upstream, a server whose model "m" lives there, and clients of that server."""
    with ScriptedUpstream(list(script), latency=latency) as upstream:
        model.setdefault("base_url", upstream.base_url)
        config = ServerConfig(api_keys=api_keys, engine=EngineConfig(preload=(), pool_size=2, limits=limits),
                              models=(UpstreamModel(name="m", action_format=action_format, **model),), agent=settings,
                              **(server or {}))
        headers = {"Authorization": f"Bearer {key}"} if api_keys else {}
        with running_server(config) as url, \
                openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60) as client, \
                httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            yield Agent(url, upstream, client, http)


def ask(a: Agent, question: str = "What is it?", **kwargs: Any) -> ChatCompletion:
    response: ChatCompletion = a.client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": question}], **kwargs)
    return response


def stream(a: Agent, question: str = "What is it?", **kwargs: Any) -> list[ChatCompletionChunk]:
    with a.client.chat.completions.create(model="m", messages=[{"role": "user", "content": question}],
                                          stream=True, **kwargs) as events:
        return list(events)


def sandlot(response: ChatCompletion | ChatCompletionChunk) -> dict[str, Any]:
    """The response's ``sandlot`` field: session_id, stop_reason, model_calls, steps."""
    extra = response.model_extra or {}
    value: dict[str, Any] = extra["sandlot"]
    return value


def stdouts(response: ChatCompletion) -> list[str]:
    return [step["stdout"] for step in sandlot(response)["steps"]]


def final_when_told(code: str = "print('working', {n})") -> Callable[[dict[str, Any]], Reply]:
    """A model that always wants to run more code, and answers only when the tool is switched off.

    Its code is ``code`` with ``{n}`` replaced by a count of its turns: new code each time, so that
    only the step and time limits stop it, not the repetition guard.
    """
    turns = iter(range(1, 1000))

    def reply(body: dict[str, Any]) -> Reply:
        if body.get("tool_choice") == "none" or not body.get("tools"):
            return Reply(FINAL)
        return Reply(tool_code=code.replace("{n}", str(next(turns))))
    return reply


def last_message(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = body["messages"][-1]
    return message


def summed_usage(upstream: ScriptedUpstream) -> dict[str, int]:
    return {name: sum(usage[name] for usage in upstream.usages)
            for name in ("prompt_tokens", "completion_tokens", "total_tokens")}


def open_sessions(a: Agent) -> int:
    count: int = a.http.get("/healthz").json()["sessions"]
    return count


def idle(a: Agent) -> bool:
    """No sandbox busy: every live one is warm in the pool or belongs to a session."""
    h = a.http.get("/healthz").json()
    return bool(h["sandboxes_alive"] == h["pool_ready"] + h["sessions"])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---- the loop ------------------------------------------------------------------------

def test_steps_share_state_and_the_answer_uses_it() -> None:
    def answer(body: dict[str, Any]) -> Reply:
        shown = last_message(body)["content"]
        found = re.fullmatch(r"(\d+)", shown)  # a run's output is shown bare, nothing around it
        return Reply(f"The answer is {found.group(1) if found else 'unknown'}.")

    with agent([Reply(tool_code="total = sum(range(10))"), Reply(tool_code="print(total * 2)"), answer]) as a:
        response = ask(a, "Twice the sum of 0..9?")
        assert response.object == "chat.completion"
        assert response.model == "m"
        assert response.choices[0].message.role == "assistant"
        assert response.choices[0].message.content == "The answer is 90."
        assert response.choices[0].finish_reason == "stop"
        extra = sandlot(response)
        assert extra["stop_reason"] == "answer"
        assert extra["model_calls"] == 3
        assert extra["session_id"] is None
        steps = extra["steps"]
        assert [set(step) for step in steps] == [STEP_KEYS, STEP_KEYS]
        assert [(s["index"], s["code"], s["status"], s["stdout"]) for s in steps] == [
            (1, "total = sum(range(10))", "ok", ""), (2, "print(total * 2)", "ok", "90\n")]
        assert all(s["error"] is None and s["duration_ms"] >= 0 for s in steps)
        # Step 2's result went back to the model as the tool result of its call.
        assert len(a.upstream.requests) == 3
        shown = last_message(a.upstream.requests[2])
        assert shown["role"] == "tool" and "90" in shown["content"]
        assert a.upstream.remaining == 0


def test_an_error_is_fed_back_with_the_last_frames_of_its_traceback() -> None:
    code = ("def inner():\n    raise ValueError('boom-123')\n"
            "def middle():\n    inner()\n"
            "def outer():\n    middle()\n"
            "outer()")
    # Answering straight after a failure is sent back once (test_agent_guards): the model says it twice.
    with agent([Reply(tool_code=code), Reply("It failed with ValueError."), Reply("It failed with ValueError.")]) as a:
        response = ask(a)
        assert response.choices[0].message.content == "It failed with ValueError."
        (step,) = sandlot(response)["steps"]
        assert step["status"] == "error"
        assert step["error"]["ename"] == "ValueError" and step["error"]["evalue"] == "boom-123"
        shown = last_message(a.upstream.requests[1])
        assert shown["role"] == "tool"
        assert shown["tool_call_id"] == a.upstream.requests[1]["messages"][-2]["tool_calls"][0]["id"]
        text = shown["content"]
        assert "ValueError: boom-123" in text
        # One line of advice: what raised, and where in the model's code.
        assert text.endswith("\nValueError at line 2 (in inner): boom-123. Fix this and run the code again.")
        assert "in inner" in text and "in middle" in text and "in outer" in text
        # Only the last frames (traceback_frames=3 by default): the outermost one is left out.
        assert "in <module>" not in text


def test_max_steps_stops_the_loop_and_the_model_answers_without_the_tool() -> None:
    with agent([final_when_told()] * 10) as a:
        response = ask(a)
        extra = sandlot(response)
        assert extra["stop_reason"] == "max_steps"
        assert len(extra["steps"]) == 3 == SETTINGS.max_steps
        assert extra["model_calls"] == 4
        assert response.choices[0].message.content == FINAL
        assert response.choices[0].finish_reason == "length"  # a limit ended the loop
        requests = a.upstream.requests
        assert len(requests) == 4
        assert [body.get("tool_choice") for body in requests] == [None, None, None, "none"]
        assert requests[-1]["tools"][0]["function"]["name"] == "python"  # offered, but switched off
        assert "Stop running code now" in last_message(requests[-1])["content"]

        # A request may ask for fewer steps than the server allows, never more.
        response = ask(a, extra_body={"max_steps": 1})
        assert sandlot(response)["stop_reason"] == "max_steps"
        assert len(sandlot(response)["steps"]) == 1
        response = ask(a, extra_body={"max_steps": 50})
        assert len(sandlot(response)["steps"]) == 3
        assert response.choices[0].message.content == FINAL


def test_the_time_limit_stops_slow_code_and_still_answers() -> None:
    settings = AgentSettings(max_steps=5, max_wall_time=5)
    with agent([Reply(tool_code="import time\ntime.sleep(30)"), final_when_told()], settings=settings) as a:
        started = time.monotonic()
        response = ask(a)
        elapsed = time.monotonic() - started
        extra = sandlot(response)
        assert extra["stop_reason"] == "time_limit"
        assert [step["status"] for step in extra["steps"]] == ["timeout"]
        assert response.choices[0].message.content == FINAL
        assert a.upstream.requests[-1]["tool_choice"] == "none"
        assert elapsed < settings.max_wall_time + 2


def test_the_time_limit_counts_model_time_too() -> None:
    settings = AgentSettings(max_steps=10, max_wall_time=5)
    with agent([final_when_told()] * 10, latency=1.0, settings=settings) as a:
        started = time.monotonic()
        response = ask(a)
        elapsed = time.monotonic() - started
        extra = sandlot(response)
        assert extra["stop_reason"] == "time_limit"
        assert 1 <= len(extra["steps"]) < 5
        assert response.choices[0].message.content == FINAL
        assert a.upstream.requests[-1]["tool_choice"] == "none"
        assert elapsed < settings.max_wall_time + 2


def test_with_no_time_left_for_the_model_the_server_writes_the_final_answer() -> None:
    # The first model turn takes 3 s of the 5: the guard trips after the step, and the
    # final model call cannot finish in the 2 s left, so the answer is written by the server.
    settings = AgentSettings(max_steps=5, max_wall_time=5)
    with agent([Reply(tool_code="print('partial result 17')"), Reply(FINAL)], latency=3.0, settings=settings) as a:
        started = time.monotonic()
        response = ask(a)
        elapsed = time.monotonic() - started
        extra = sandlot(response)
        assert extra["stop_reason"] == "time_limit"
        assert stdouts(response) == ["partial result 17\n"]
        content = response.choices[0].message.content or ""
        assert content.startswith("I stopped before finishing")
        assert "partial result 17" in content
        assert elapsed < settings.max_wall_time + 2


def test_a_model_call_that_outlasts_the_request_keeps_the_steps_already_run() -> None:
    # Turn 2 never comes back within the request's time: rather than a 504 that loses the work,
    # the loop stops with time_limit and answers with the step it has.
    def slow_second_turn(body: dict[str, Any]) -> Reply:
        time.sleep(8)
        return Reply(FINAL)

    settings = AgentSettings(max_steps=5, max_wall_time=5)
    with agent([Reply(tool_code="print('found 23')"), slow_second_turn], settings=settings) as a:
        started = time.monotonic()
        response = ask(a)
        extra = sandlot(response)
        assert extra["stop_reason"] == "time_limit"
        assert stdouts(response) == ["found 23\n"]
        assert "found 23" in (response.choices[0].message.content or "")
        assert time.monotonic() - started < settings.max_wall_time + 2


def test_a_model_that_never_answers_in_time_is_a_504() -> None:
    def never(body: dict[str, Any]) -> Reply:
        time.sleep(8)
        return Reply(FINAL)

    with agent([never], settings=AgentSettings(max_steps=5, max_wall_time=4)) as a:
        with pytest.raises(openai.APIStatusError) as caught:
            ask(a)
        assert caught.value.status_code == 504


def test_the_same_failing_code_twice_starts_over_once_then_stops_the_loop() -> None:
    failing = Reply(tool_code="1 / 0")
    with agent([failing, failing, failing, failing, final_when_told()], settings=SETTINGS_6) as a:
        response = ask(a)
        extra = sandlot(response)
        assert extra["stop_reason"] == "repeated_failure"
        assert [step["status"] for step in extra["steps"]] == ["error"] * 4
        assert response.choices[0].message.content == FINAL
        assert a.upstream.requests[-1]["tool_choice"] == "none"
        # The third request started over: the question and what went wrong, without the failing code.
        third = a.upstream.requests[2]["messages"]
        assert third[-2]["role"] == "user" and third[-2]["content"] == "What is it?"
        assert third[-1]["role"] == "user" and "failed twice" in third[-1]["content"]
        assert "ZeroDivisionError" in third[-1]["content"] and "1 / 0" not in json.dumps(third)


def test_starting_over_after_a_repeated_failure_can_succeed() -> None:
    failing = Reply(tool_code="1 / 0")
    with agent([failing, failing, Reply(tool_code="print(6 * 7)"), Reply("The answer is 42.")], settings=SETTINGS_6) as a:
        response = ask(a)
        assert sandlot(response)["stop_reason"] == "answer"
        assert response.choices[0].message.content == "The answer is 42."
        assert stdouts(response) == ["", "", "42\n"]


    # Only the same code failing *in a row* counts: here the loop runs to max_steps.
    with agent([failing, Reply(tool_code="x = 1"), failing, final_when_told()]) as a:
        response = ask(a)
        assert sandlot(response)["stop_reason"] == "max_steps"
        assert [step["status"] for step in sandlot(response)["steps"]] == ["error", "ok", "error"]


def test_parallel_tool_calls_run_in_order_in_one_session() -> None:
    script = [Reply(tool_code=["a = 1", "b = a + 1", "print(a + b)"]), Reply("3")]
    with agent(script) as a:
        response = ask(a)
        assert response.choices[0].message.content == "3"
        steps = sandlot(response)["steps"]
        assert [(s["index"], s["code"], s["status"]) for s in steps] == [
            (1, "a = 1", "ok"), (2, "b = a + 1", "ok"), (3, "print(a + b)", "ok")]
        assert steps[2]["stdout"] == "3\n"
        messages = a.upstream.requests[1]["messages"]
        call_ids = [call["id"] for call in messages[-4]["tool_calls"]]
        assert len(set(call_ids)) == 3
        results = messages[-3:]
        assert [m["role"] for m in results] == ["tool"] * 3
        assert [m["tool_call_id"] for m in results] == call_ids
        assert "3" in results[2]["content"]


def test_usage_is_summed_over_the_loop() -> None:
    with agent([Reply(tool_code="x = 2"), Reply(tool_code="print(x)"), Reply("2")]) as a:
        response = ask(a)
        assert response.usage is not None
        assert len(a.upstream.usages) == 3
        assert response.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}) == \
            summed_usage(a.upstream)


# ---- streaming -----------------------------------------------------------------------

def test_streaming_interleaves_content_and_steps_and_ends_with_usage() -> None:
    script = [Reply("Let me compute. ", tool_code="x = 6 * 7\nprint(x)"), Reply("The answer is 42.")]
    with agent(script) as a:
        chunks = stream(a, stream_options={"include_usage": True})
        assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
        assert len({chunk.id for chunk in chunks}) == 1
        events: list[tuple[str, Any]] = []
        for chunk in chunks:
            extra = chunk.model_extra or {}
            if chunk.choices:
                (choice,) = chunk.choices
                if choice.delta.content:
                    events.append(("content", choice.delta.content))
                if choice.finish_reason is not None:
                    events.append(("finish", choice.finish_reason))
            elif "step" in (extra.get("sandlot") or {}):
                events.append(("step", extra["sandlot"]["step"]))
            if chunk.usage is not None:
                events.append(("usage", chunk.usage))
        kinds = [kind for kind, _ in events]
        # Text of the first turn, then its step, then the answer's text, the finish chunk, usage last.
        first_step = kinds.index("step")
        assert set(kinds[:first_step]) == {"content"}
        assert kinds.count("step") == 1
        assert set(kinds[first_step + 1:-2]) == {"content"}
        assert kinds[-2:] == ["finish", "usage"]
        before = "".join(text for kind, text in events[:first_step] if kind == "content")
        after = "".join(text for kind, text in events[first_step + 1:] if kind == "content")
        assert before == "Let me compute. "
        assert after == "The answer is 42."
        step = events[first_step][1]
        assert set(step) == STEP_KEYS
        assert (step["index"], step["code"], step["status"], step["stdout"]) == (1, "x = 6 * 7\nprint(x)", "ok", "42\n")
        assert chunks[0].choices[0].delta.role == "assistant"
        assert events[-2][1] == "stop"
        finish_extra = sandlot(chunks[-2])
        assert finish_extra["stop_reason"] == "answer" and finish_extra["model_calls"] == 2
        assert [s["stdout"] for s in finish_extra["steps"]] == ["42\n"]
        usage = events[-1][1]
        assert chunks[-1].choices == []
        assert usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}) == \
            summed_usage(a.upstream)
        # The server streamed from the upstream too, asking it for usage.
        assert all(body["stream"] and body["stream_options"] == {"include_usage": True}
                   for body in a.upstream.requests)


def test_streaming_without_include_usage_sends_no_usage() -> None:
    with agent([Reply("Just text.")]) as a:
        chunks = stream(a)
        assert all(chunk.usage is None for chunk in chunks)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Just text."
        assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_client_that_disconnects_mid_stream_stops_the_loop_and_frees_the_session(
        caplog: pytest.LogCaptureFixture) -> None:
    script = [Reply(tool_code="print('first')"),
              Reply(tool_code="print('started', flush=True)\nimport time\ntime.sleep(30)"), Reply(FINAL)]
    with agent(script) as a:
        body = {"model": "m", "messages": [{"role": "user", "content": "go"}], "stream": True}
        with caplog.at_level(logging.WARNING, logger="sandlot"):
            with a.http.stream("POST", "/v1/chat/completions", json=body) as response:
                lines = response.iter_lines()
                for line in lines:  # held: dropping the iterator would close the connection early
                    if line.startswith("data:") and '"step"' in line:
                        break
                time.sleep(0.5)  # the second step is running now
                assert open_sessions(a) == 1
            started = time.monotonic()
            assert wait_until(lambda: open_sessions(a) == 0 and idle(a), 5), a.http.get("/healthz").json()
            assert time.monotonic() - started < 5
            time.sleep(0.5)  # a teardown cut short would have logged by now
        # The session's teardown ran to the end: its sandbox exited and its uid was released.
        assert [r.getMessage() for r in caplog.records if "did not exit" in r.getMessage()] == []
        assert len(a.upstream.requests) == 2  # the model was not asked again


# ---- sessions ------------------------------------------------------------------------

def test_a_request_can_continue_an_existing_session() -> None:
    with agent([Reply(tool_code="print(secret)"), Reply("It is from-the-session.")]) as a:
        created = a.http.post("/v1/sessions")
        assert created.status_code == 201
        session_id = created.json()["id"]
        ran = a.http.post(f"/v1/sessions/{session_id}/execute", json={"code": "secret = 'from-the-session'"})
        assert ran.json()["status"] == "ok"

        response = ask(a, extra_body={"session_id": session_id})
        assert stdouts(response) == ["from-the-session\n"]
        assert sandlot(response)["session_id"] == session_id
        after = a.http.get(f"/v1/sessions/{session_id}")  # the client's session is not deleted
        assert after.status_code == 200
        assert after.json()["execution_count"] == 2

        with pytest.raises(openai.NotFoundError):
            ask(a, extra_body={"session_id": "ses_not_there"})


TABLE = "name,units\nbolt,4\ngear,7\nvalve,12\nnut,1\nwasher,30\n"
TABLE_QUESTION = f"Here is a table:\n{TABLE}How many units in all?"
SUM_UNITS = "import csv\nprint(sum(int(row['units']) for row in csv.DictReader(open('table1.csv'))))"


def test_a_table_in_the_question_becomes_a_file_the_model_is_pointed_to() -> None:
    with agent([Reply(tool_code=SUM_UNITS), Reply("The answer is 54.")]) as a:
        response = ask(a, TABLE_QUESTION)
        assert stdouts(response) == ["54\n"]  # the code read the file sandlot wrote
        # The model saw the file's name, its size and its first rows, not the whole table.
        shown = last_message(a.upstream.requests[0])["content"]
        assert "table1.csv" in shown and "5 rows" in shown and "gear,7" in shown and "washer,30" not in shown
        assert shown.startswith("Here is a table:\n") and shown.endswith("How many units in all?")


def test_a_users_own_file_is_never_overwritten_by_a_table() -> None:
    with agent([Reply(tool_code="print(open('table1.csv').read()); print(open('table1-2.csv').read())"),
                Reply("Done.")]) as a:
        session_id = a.http.post("/v1/sessions").json()["id"]
        assert a.http.put(f"/v1/sessions/{session_id}/files/table1.csv", content=b"mine\n").status_code == 201
        response = ask(a, TABLE_QUESTION, extra_body={"session_id": session_id})
        assert stdouts(response) == ["mine\n\n" + TABLE + "\n"]
        assert "table1-2.csv" in last_message(a.upstream.requests[0])["content"]
        assert a.http.get(f"/v1/sessions/{session_id}/files/table1.csv").content == b"mine\n"


def test_prose_with_commas_is_not_taken_for_a_table() -> None:
    with agent([Reply("Fine.")]) as a:
        question = ("I have apples, pears, and plums.\nYou have figs, dates, and limes.\nWho, then, has more?\n"
                    "So apples, oranges, bananas\nand then, as we said, the whole story of the day goes on")
        ask(a, question)
        assert last_message(a.upstream.requests[0])["content"] == question


def test_keep_session_keeps_the_state_and_the_default_deletes_it() -> None:
    with agent([Reply(tool_code="kept = 99"), Reply("Stored."), Reply(tool_code="gone = 1"), Reply("Done.")]) as a:
        response = ask(a, extra_body={"keep_session": True})
        session_id = sandlot(response)["session_id"]
        assert isinstance(session_id, str) and session_id.startswith("ses_")
        assert a.http.get(f"/v1/sessions/{session_id}").status_code == 200
        ran = a.http.post(f"/v1/sessions/{session_id}/execute", json={"code": "print(kept)"})
        assert ran.json()["stdout"] == "99\n"
        assert open_sessions(a) == 1

        # By default the request's session is gone afterwards; the stream's step event names it.
        chunks = stream(a)
        steps = [sandlot(c) for c in chunks if not c.choices and "step" in (c.model_extra or {}).get("sandlot", {})]
        (event,) = steps
        transient = event["session_id"]
        assert transient != session_id
        assert sandlot(chunks[-1])["session_id"] is None
        assert wait_until(lambda: open_sessions(a) == 1, 5)  # only the kept one
        assert a.http.get(f"/v1/sessions/{transient}").status_code == 404
        assert a.http.delete(f"/v1/sessions/{session_id}").status_code == 204
        assert open_sessions(a) == 0


# ---- action formats ------------------------------------------------------------------

def test_code_blocks_mode_runs_fenced_python_and_feeds_the_output_back_as_a_user_message() -> None:
    reply = "I'll compute it.\n```python\nx = 5\nprint(x * 2)\n```\nand then\n```python\nprint(x + 1)\n```"
    with agent([Reply(reply), Reply("It is 10.")], action_format="code_blocks") as a:
        response = ask(a)
        assert response.choices[0].message.content == "It is 10."
        assert stdouts(response) == ["10\n", "6\n"]
        first, second = a.upstream.requests
        assert "tools" not in first
        assert "```python" in first["messages"][0]["content"]  # the system prompt explains the format
        assistant, user = second["messages"][-2:]
        assert assistant == {"role": "assistant", "content": reply}
        assert user["role"] == "user"
        assert user["content"] == "```output\n10\n```\n\n```output\n6\n```"


def test_auto_mode_runs_code_blocks_when_the_model_answers_with_them() -> None:
    with agent([Reply("```python\nprint(3 ** 4)\n```"), Reply("81")], action_format="auto") as a:
        response = ask(a)
        assert response.choices[0].message.content == "81"
        assert stdouts(response) == ["81\n"]
        first, second = a.upstream.requests
        assert [tool["function"]["name"] for tool in first["tools"]] == ["python"]  # the tool was offered
        shown = last_message(second)
        assert shown["role"] == "user" and "81" in shown["content"]

    # In tool mode, a code block in the reply is just text: the answer.
    with agent([Reply("```python\nprint(3 ** 4)\n```")], action_format="tool_calls") as a:
        response = ask(a)
        assert response.choices[0].message.content == "```python\nprint(3 ** 4)\n```"
        assert sandlot(response)["steps"] == []


def test_auto_mode_falls_back_to_code_blocks_when_the_upstream_refuses_tools() -> None:
    script = [Reply("this model does not support tools", status=400), Reply("```python\nprint(7 * 6)\n```"),
              Reply("42"), Reply("```python\nprint(1 + 1)\n```"), Reply("2")]
    with agent(script, action_format="auto") as a:
        response = ask(a)
        assert response.choices[0].message.content == "42"
        assert stdouts(response) == ["42\n"]
        refused, retried, answered = a.upstream.requests
        assert "tools" in refused
        assert "tools" not in retried and "tools" not in answered
        assert "```python" in retried["messages"][0]["content"]  # the code-block system prompt
        # The system prompt, the worked example (question, code, output, answer), the question.
        assert [m["role"] for m in retried["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]
        # Learned: the next request does not offer the tool at all.
        response = ask(a)
        assert stdouts(response) == ["2\n"]
        assert all("tools" not in body for body in a.upstream.requests[3:])


def test_ordinary_chat_is_a_transparent_proxy() -> None:
    with agent([Reply("Paris is the capital of France.")], model="upstream-model-7b") as a:
        response = ask(a, "Capital of France?", temperature=0.2, max_tokens=50, seed=7)
        assert response.choices[0].message.content == "Paris is the capital of France."
        assert response.choices[0].finish_reason == "stop"
        assert response.model == "m"
        extra = sandlot(response)
        assert (extra["stop_reason"], extra["model_calls"], extra["steps"]) == ("answer", 1, [])
        (body,) = a.upstream.requests
        assert body["model"] == "upstream-model-7b"
        assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.2, 50, 7)
        assert last_message(body) == {"role": "user", "content": "Capital of France?"}
        assert response.usage is not None
        assert response.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}) == \
            a.upstream.usages[0]
        # Without an api_key_env, a placeholder goes upstream (local servers ignore it), not the client's key.
        assert a.upstream.headers[0]["authorization"] == "Bearer sandlot-no-key"


def test_a_client_defined_tool_call_is_handed_back_to_the_client() -> None:
    script = [Reply(tool_calls=[("get_weather", {"city": "Paris"})]), Reply("It is sunny in Paris."),
              Reply(tool_calls=[("get_weather", {"city": "Oslo"})])]
    with agent(script) as a:
        question = [{"role": "user", "content": "Weather in Paris?"}]
        response = a.client.chat.completions.create(model="m", messages=question,  # type: ignore[arg-type]
                                                    tools=[WEATHER_TOOL])  # type: ignore[list-item]
        choice = response.choices[0]
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls or []
        assert call.type == "function"
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "Paris"}
        extra = sandlot(response)
        assert (extra["stop_reason"], extra["steps"]) == ("client_tool", [])
        assert [tool["function"]["name"] for tool in a.upstream.requests[0]["tools"]] == ["python", "get_weather"]

        # The client runs its tool and continues the conversation; the result reaches the model.
        conversation = [*question, choice.message.model_dump(exclude_none=True),
                        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"}]
        response = a.client.chat.completions.create(model="m", messages=conversation,  # type: ignore[arg-type]
                                                    tools=[WEATHER_TOOL])  # type: ignore[list-item]
        assert response.choices[0].message.content == "It is sunny in Paris."
        assert last_message(a.upstream.requests[1]) == {"role": "tool", "tool_call_id": call.id,
                                                        "content": "sunny, 24 C"}

        # Streamed, the call arrives as tool_call deltas and the finish reason is tool_calls.
        chunks = stream(a, tools=[WEATHER_TOOL])
        deltas = [part for c in chunks if c.choices for part in c.choices[0].delta.tool_calls or []]
        assert [(d.function.name, d.function.arguments) for d in deltas if d.function] == [
            ("get_weather", json.dumps({"city": "Oslo"}))]
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
        assert sandlot(chunks[-1])["stop_reason"] == "client_tool"


def test_only_the_clients_own_tool_calls_are_handed_back() -> None:
    # The model calls python and the client's tool in one turn: the client can answer only its own
    # call, and an assistant message with a call left unanswered would be refused upstream next turn.
    script = [Reply(tool_code="print(1)", tool_calls=[("get_weather", {"city": "Rome"})]), Reply("Sunny.")]
    with agent(script) as a:
        question = [{"role": "user", "content": "Weather in Rome?"}]
        response = a.client.chat.completions.create(model="m", messages=question,  # type: ignore[arg-type]
                                                    tools=[WEATHER_TOOL])  # type: ignore[list-item]
        assert response.choices[0].finish_reason == "tool_calls"
        calls = response.choices[0].message.tool_calls or []
        assert [call.function.name for call in calls if call.type == "function"] == ["get_weather"]
        assert sandlot(response)["stop_reason"] == "client_tool"
        conversation = [*question, response.choices[0].message.model_dump(exclude_none=True),
                        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"}]
        a.client.chat.completions.create(model="m", messages=conversation,  # type: ignore[arg-type]
                                         tools=[WEATHER_TOOL])  # type: ignore[list-item]
        sent = a.upstream.requests[1]["messages"]
        answered = {m["tool_call_id"] for m in sent if m["role"] == "tool"}
        asked = {c["id"] for m in sent if m["role"] == "assistant" for c in m.get("tool_calls", [])}
        assert asked == answered


# ---- models and errors ---------------------------------------------------------------

def test_models_lists_the_configured_model() -> None:
    with agent([]) as a:
        models = a.client.models.list()
        assert [model.id for model in models.data] == ["m"]
        assert models.data[0].object == "model"


def test_an_unknown_model_is_404() -> None:
    with agent([Reply("never")]) as a:
        with pytest.raises(openai.NotFoundError) as caught:
            a.client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
        assert caught.value.status_code == 404
        assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "not_found"
        assert a.upstream.requests == []


def test_an_unreachable_upstream_is_502() -> None:
    with agent([], base_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=0) as a:
        with pytest.raises(openai.APIStatusError) as caught:
            ask(a)
        assert caught.value.status_code == 502
        assert isinstance(caught.value, openai.InternalServerError)
        assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "upstream_error"
        assert wait_until(lambda: open_sessions(a) == 0, 5)  # the request's session was cleaned up


def test_an_upstream_failure_mid_stream_is_an_error_event() -> None:
    with agent([], base_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=0) as a:
        with pytest.raises(openai.APIError) as caught:
            stream(a)
        assert "could not reach the model" in caught.value.message
        assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "upstream_error"
        assert wait_until(lambda: open_sessions(a) == 0, 5)


def test_over_the_run_quota_is_429_streamed_or_not() -> None:
    with agent([Reply("slow answer")] * 3, latency=1.5, server={"max_runs_per_key": 1}) as a:
        first = threading.Thread(target=ask, args=(a,))
        first.start()
        try:
            assert wait_until(lambda: len(a.upstream.requests) == 1, 5)  # the first run is in flight
            with pytest.raises(openai.RateLimitError):
                ask(a)
            with pytest.raises(openai.RateLimitError):
                stream(a)
        finally:
            first.join()
        assert len(a.upstream.requests) == 1
        assert wait_until(lambda: open_sessions(a) == 0, 5)


def test_an_upstream_that_fails_is_502() -> None:
    with agent([], max_retries=0) as a:  # an exhausted script answers 500
        with pytest.raises(openai.InternalServerError) as caught:
            ask(a)
        assert caught.value.status_code == 502
        assert "the script is exhausted" in caught.value.message


def test_an_upstream_that_refuses_the_request_is_400() -> None:
    with agent([Reply("max_tokens is too large", status=400)], max_retries=0) as a:
        with pytest.raises(openai.BadRequestError) as caught:
            ask(a)
        assert "max_tokens is too large" in caught.value.message


def test_an_upstream_timeout_is_504() -> None:
    with agent([Reply("too late")], latency=1.5, timeout=0.3, max_retries=0) as a:
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as caught:
            ask(a)
        assert caught.value.status_code == 504
        assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "upstream_timeout"
        assert time.monotonic() - started < 1.5


def test_an_invalid_request_is_400() -> None:
    with agent([]) as a:
        with pytest.raises(openai.BadRequestError):
            a.client.chat.completions.create(model="m", messages=[])


# ---- auth and secrets ----------------------------------------------------------------

def test_api_keys_are_required_when_configured() -> None:
    with agent([Reply("Hello.")], api_keys=(API_KEY, OTHER_KEY), key=API_KEY) as a:
        assert [model.id for model in a.client.models.list().data] == ["m"]
        assert ask(a).choices[0].message.content == "Hello."
        with openai.OpenAI(base_url=a.url + "/v1", api_key="wrong-key", max_retries=0) as wrong:
            with pytest.raises(openai.AuthenticationError):
                wrong.models.list()
            with pytest.raises(openai.AuthenticationError):
                wrong.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        # Another key's session is not found, as on the sessions routes.
        session_id = a.http.post("/v1/sessions").json()["id"]
        with openai.OpenAI(base_url=a.url + "/v1", api_key=OTHER_KEY, max_retries=0) as other:
            with pytest.raises(openai.NotFoundError):
                other.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                              extra_body={"session_id": session_id})
        assert len(a.upstream.requests) == 1


def test_the_upstream_key_goes_upstream_and_never_into_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UPSTREAM_KEY_ENV, raising=False)
    code = "import os\nprint(dict(os.environ))"
    with agent([Reply(tool_code=code), Reply("Done."), Reply("Rotated.")], api_key_env=UPSTREAM_KEY_ENV) as a:
        monkeypatch.setenv(UPSTREAM_KEY_ENV, UPSTREAM_KEY)  # read at call time, not at start-up
        response = ask(a)
        assert [h["authorization"] for h in a.upstream.headers] == [f"Bearer {UPSTREAM_KEY}"] * 2
        (step,) = sandlot(response)["steps"]
        assert step["status"] == "ok" and "PATH" in step["stdout"]  # the environment was printed...
        assert UPSTREAM_KEY not in step["stdout"]  # ...without the key
        assert UPSTREAM_KEY_ENV not in step["stdout"]
        assert HOST_SECRET not in step["stdout"]
        assert UPSTREAM_KEY not in response.model_dump_json()
        assert UPSTREAM_KEY not in json.dumps(a.upstream.requests)
        monkeypatch.setenv(UPSTREAM_KEY_ENV, "sk-rotated")
        ask(a)
        assert a.upstream.headers[-1]["authorization"] == "Bearer sk-rotated"


# ---- the async client ----------------------------------------------------------------

def test_the_async_client_works_streamed_and_not() -> None:
    script = [Reply(tool_code="print(2 ** 10)"), Reply("1024"), Reply(tool_code="print('x' * 3)"), Reply("xxx")]

    async def main(url: str) -> tuple[ChatCompletion, list[ChatCompletionChunk]]:
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0) as client:
            response = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "2^10?"}])
            events = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x*3?"}],
                                                          stream=True, stream_options={"include_usage": True})
            async with events:
                chunks = [chunk async for chunk in events]
            return response, chunks

    with agent(script) as a:
        response, chunks = asyncio.run(main(a.url))
        assert response.choices[0].message.content == "1024"
        assert stdouts(response) == ["1024\n"]
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert content == "xxx"
        steps = [sandlot(c)["step"] for c in chunks if not c.choices and "step" in (c.model_extra or {}).get("sandlot", {})]
        assert [s["stdout"] for s in steps] == ["xxx\n"]
        assert chunks[-1].usage is not None
