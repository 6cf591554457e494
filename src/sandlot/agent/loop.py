"""The server-side agent loop: model, code, result, model... until an answer.

One request, many steps, no round trip to the client per step. Each step runs
in the request's session, so steps share variables and files. The loop stops
when the model answers without asking to run code, or when a guard trips:

- ``max_steps``: model turns that ran code;
- ``time_limit``: the request's wall time, model and code together;
- ``repeated_failure``: the same code failed ``repeat_limit`` times in a row;
- ``client_tool``: the model called a tool the *client* defined; the call is
  handed back to the client, as a plain proxy would.

When a guard trips, the model is asked once more, without the tool, for a
final answer; if no time is left for that, the answer is written here. Either
way the response says why the loop stopped (``stop_reason``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._errors import InvalidRequestError, UpstreamTimeoutError
from .._models import ExecutionResult, ToolCallRecord
from ..engine import Session
from ..tools.broker import ToolBroker
from .actions import (
    CODE_BLOCK_SYSTEM_PROMPT,
    TOOL_NAME,
    TOOL_SYSTEM_PROMPT,
    code_blocks,
    describe_host_tools,
    python_tool,
    tool_call_code,
)
from .config import AgentSettings
from .observations import image_parts, observation_text
from .upstream import DeltaCallback, Turn, Upstream

FINAL_ANSWER_RESERVE = 3.0
"""Seconds kept back from the time limit for the final answer after a guard trips."""


class _OutOfTime(Exception):
    """The request's wall time ran out while the model was still answering."""


@dataclass
class Step:
    """One piece of code the model asked to run, and what happened."""

    index: int
    code: str
    result: ExecutionResult

    def summary(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "status": self.result.status,
                "stdout": self.result.stdout, "stderr": self.result.stderr,
                "outputs": [o.model_dump(mode="json") for o in self.result.outputs],
                "error": self.result.error.model_dump() if self.result.error else None,
                "duration_ms": self.result.duration_ms,
                "tool_calls": [call.model_dump() for call in self.result.tool_calls]}


StepCallback = Callable[[Step], None]


@dataclass
class Outcome:
    message: dict[str, Any]
    finish_reason: str
    stop_reason: str
    steps: list[Step] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    """Host tools the model called directly (calls made by code are in each step's result)."""


class AgentLoop:
    def __init__(self, upstream: Upstream, session: Session, settings: AgentSettings, *, max_steps: int,
                 wall_time: float, client_tools: list[dict[str, Any]] | None, params: dict[str, Any],
                 host_tools: ToolBroker | None = None) -> None:
        self.upstream = upstream
        self.host_tools = host_tools
        """The host tools of this request: described to the model for its code, and (those the
        operator exposes so) offered as ordinary tool calls the server runs itself."""
        self.session = session
        self.settings = settings
        self.max_steps = max_steps
        self.deadline = time.monotonic() + wall_time
        self.client_tools = client_tools or []
        self.params = params
        self.steps: list[Step] = []
        self._usage = [0, 0, 0]  # prompt tokens, completion tokens, model calls

    @property
    def action_format(self) -> str:
        wanted = self.upstream.config.action_format
        if wanted == "auto" and self.upstream.tools_rejected:
            return "code_blocks"
        return wanted

    async def run(self, messages: list[dict[str, Any]], on_delta: DeltaCallback | None = None,
                  on_step: StepCallback | None = None) -> Outcome:
        use_tool = self.action_format != "code_blocks"
        registry = list(self.host_tools.registry) if self.host_tools is not None else []
        tools_text = describe_host_tools([t.python_signature() for t in registry if t.expose in ("code", "both")])
        direct = {t.name: t for t in registry if t.expose in ("tool_call", "both")}
        code_block_prompt = CODE_BLOCK_SYSTEM_PROMPT + ("\n\n" + tools_text if tools_text else "")
        system = TOOL_SYSTEM_PROMPT if use_tool else code_block_prompt
        conversation = [{"role": "system", "content": system}, *messages]
        tools = ([python_tool(tools_text)] + [t.openai_tool() for t in direct.values()] if use_tool else []) + \
            self.client_tools
        code_turns = 0
        stop_reason = "answer"
        while True:
            if code_turns >= self.max_steps:
                stop_reason = "max_steps"
                break
            if self._remaining() <= FINAL_ANSWER_RESERVE:
                stop_reason = "time_limit"
                break
            try:
                turn = await self._ask(conversation, tools or None, on_delta)
            except _OutOfTime:
                if not self.steps:
                    raise UpstreamTimeoutError("the request's time limit ran out while waiting for the model") from None
                stop_reason = "time_limit"  # keep the steps already run: answer with them below
                break
            except InvalidRequestError:
                if not use_tool or self.action_format != "code_blocks" or self.client_tools:
                    raise
                # auto mode, and the upstream just refused the `tools` parameter: ask again with code blocks.
                use_tool, tools, direct = False, [], {}
                conversation[0] = {"role": "system", "content": code_block_prompt}
                continue
            ours = [call for call in turn.tool_calls if call.name == TOOL_NAME or call.name in direct]
            if client_calls := [call for call in turn.tool_calls if call not in ours]:
                # Hand back only the client's own calls: it cannot answer a `python` call, and an
                # unanswered call would make the upstream refuse the conversation's next turn.
                return self._outcome(Turn(turn.content, client_calls).as_message(), "tool_calls", "client_tool")
            if ours:
                conversation.append(Turn(turn.content, ours).as_message())
                results = []
                for call in ours:
                    if call.name == TOOL_NAME:
                        result = await self._run_step(tool_call_code(call.arguments), on_step)
                        results.append(result)
                        content = self._observe(result)
                    else:
                        content = await self._call_host_tool(call.name, call.arguments)
                    conversation.append({"role": "tool", "tool_call_id": call.id, "content": content})
                self._show_figures(conversation, results)
            elif self.action_format != "tool_calls" and (blocks := code_blocks(turn.content)):
                conversation.append({"role": "assistant", "content": turn.content})
                results = [await self._run_step(code, on_step) for code in blocks]
                observed = "\n\n".join(self._observe(r) for r in results)
                conversation.append({"role": "user", "content": f"Output of your code:\n{observed}"})
                self._show_figures(conversation, results)
            else:
                return self._outcome({"role": "assistant", "content": turn.content},
                                     turn.finish_reason or "stop", "answer")
            code_turns += 1
            if self._repeated_failure():
                stop_reason = "repeated_failure"
                break
        return await self._final_answer(conversation, tools, stop_reason, on_delta)

    async def _ask(self, conversation: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                   on_delta: DeltaCallback | None, **extra: Any) -> Turn:
        try:
            turn = await asyncio.wait_for(
                self.upstream.turn(conversation, tools=tools, params={**self.params, **extra}, on_delta=on_delta),
                max(self._remaining(), 0.1))
        except TimeoutError:
            raise _OutOfTime from None
        self._usage[0] += turn.prompt_tokens
        self._usage[1] += turn.completion_tokens
        self._usage[2] += 1
        return turn

    async def _run_step(self, code: str, on_step: StepCallback | None) -> ExecutionResult:
        timeout = max(0.5, min(self.session.limits.timeout, self._remaining() - FINAL_ANSWER_RESERVE))
        result = await self.session.execute(code, timeout=timeout)
        step = Step(len(self.steps) + 1, code, result)
        self.steps.append(step)
        if on_step is not None:
            on_step(step)
        return result

    async def _call_host_tool(self, name: str, arguments: str) -> str:
        """A host tool the model called directly: run it here, answer with its JSON result or error."""
        assert self.host_tools is not None
        try:
            parsed = json.loads(arguments or "{}")
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return f"error: the arguments of {name} must be a JSON object"
        ok, payload = await self.host_tools.call(name, parsed)
        text = json.dumps(payload, default=str) if ok else f"error: {payload['message']}"
        return text if len(text) <= self.settings.result_budget else text[:self.settings.result_budget] + " …(cut)"

    def _observe(self, result: ExecutionResult) -> str:
        return observation_text(result, self.settings.result_budget, self.settings.traceback_frames)

    def _show_figures(self, conversation: list[dict[str, Any]], results: list[ExecutionResult]) -> None:
        if not self.upstream.config.vision:
            return
        parts = [part for result in results for part in image_parts(result)]
        if parts:
            conversation.append({"role": "user", "content": [{"type": "text", "text": "Figures from that code:"},
                                                              *parts]})

    def _repeated_failure(self) -> bool:
        recent = self.steps[-self.settings.repeat_limit:]
        if len(recent) < self.settings.repeat_limit:
            return False
        codes = {" ".join(step.code.split()) for step in recent}
        return len(codes) == 1 and all(step.result.status != "ok" for step in recent)

    async def _final_answer(self, conversation: list[dict[str, Any]], tools: list[dict[str, Any]],
                            stop_reason: str, on_delta: DeltaCallback | None) -> Outcome:
        why = {"max_steps": f"the limit of {self.max_steps} code steps was reached",
               "time_limit": "the time limit for this request is nearly used up",
               "repeated_failure": "the same code kept failing"}[stop_reason]
        if self._remaining() > 1.0:
            conversation.append({"role": "user", "content": f"Stop running code now: {why}. Answer the question "
                                                            "with what you have found so far, without any code."})
            extra = {"tool_choice": "none"} if tools else {}
            try:
                turn = await self._ask(conversation, tools or None, on_delta, **extra)
                return self._outcome({"role": "assistant", "content": turn.content}, "stop", stop_reason)
            except Exception:  # a failing final call must not hide the work done: fall back below
                pass
        text = f"I stopped before finishing: {why}."
        if self.steps:
            last = self.steps[-1].result
            text += f" The last step ended with status {last.status}."
            if last.stdout.strip():
                text += f" Its output was:\n{last.stdout.strip()[-1000:]}"
        if on_delta is not None:
            on_delta(text)
        return self._outcome({"role": "assistant", "content": text}, "stop", stop_reason)

    def _outcome(self, message: dict[str, Any], finish_reason: str, stop_reason: str) -> Outcome:
        direct_calls = list(self.host_tools.calls) if self.host_tools is not None else []
        return Outcome(message, finish_reason, stop_reason, list(self.steps), self._usage[0], self._usage[1],
                       self._usage[2], direct_calls)

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()
