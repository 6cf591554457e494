"""The server-side agent loop: model, code, result, model... until an answer.

One request, many steps, no round trip to the client per step. Each step runs
in the request's session, so steps share variables and files. The model is
shown sandlot's system prompt and one worked example (``prompts``), then the
request's conversation. The loop stops when the model answers without asking
to run code, or when a guard trips (``stop_reason``):

- ``repetition``: a code turn repeated the one before (its code, or its
  output); the model was told it has that output and must answer, and
  repeated itself again (``guards.Repetition``);
- ``repeated_failure``: the same code failed ``repeat_limit`` times in a row;
- ``no_answer``: the model stopped writing code but its reply, asked twice,
  held nothing of its own (only sandlot's output or words: ``guards.own_words``);
  an answer straight after a failed run, or one with a number after a run that
  showed nothing or got a hint, is sent back once, to do what the hint says;
  one before any code ran, with numbers the request does not hold, once, to
  compute them (``compute_numbers``);
- a reply the token limit cut in a loop (one line or item over and over:
  ``guards.runaway``) is asked for again, once per request, with a frequency
  penalty (``RUNAWAY_PENALTY``), before anything else looks at it;
- ``max_steps``: model turns that ran code; ``time_limit``: the request's wall
  time, model and code together;
- ``client_tool``: the model called a tool the *client* defined; the call is
  handed back to the client, as a plain proxy would.

With ``candidates`` above 1 (self-consistency, off by default), each code turn is
sampled that many times, every program is run, and the loop goes on with the one
whose output most of them printed (``voting``).

When a guard trips, the model is asked once more, with code disabled and
reminded of its code's last output, for the answer; if that reply is no
answer either, or no time is left for it, sandlot writes the reply itself,
stating the last output. ``finish_reason`` is the model's own on an answer,
``length`` when a limit (``max_steps``, ``time_limit``) ended the loop,
``tool_calls`` for a client tool, ``stop`` otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .. import tracing
from .._errors import InvalidRequestError, SandlotError, UpstreamTimeoutError
from .._models import ExecutionResult, ToolCallRecord
from ..engine import Session
from ..tools.broker import ToolBroker
from . import attachments, prompts, transcription, voting
from .actions import TOOL_NAME, code_turn, describe_host_tools, python_tool, tool_call_code
from .config import AgentSettings
from .guards import Repetition, has_number, own_words, repeated_failure, runaway, uncomputed_numbers
from .observations import Observation, image_parts, missing_name, name_lookup, observe, wants_files
from .upstream import DeltaCallback, ToolCall, Turn, Upstream

RUNAWAY_PENALTY = 0.5
"""The frequency penalty a runaway turn is asked again with: enough to break a loop of one line, once."""

FINAL_ANSWER_RESERVE = 3.0
"""Seconds kept back from the time limit for the final answer after a guard trips."""

LIMIT_STOPS = ("max_steps", "time_limit")
"""Stop reasons that are a budget running out: their ``finish_reason`` is ``length``."""

_LOOKUP_TIMEOUT = 5.0
"""Seconds for the cell that looks up a module's names for a hint."""

_LAST_VALUE_IN_REQUEST = 300
_LAST_VALUE_IN_REPLY = 1000

log = logging.getLogger("sandlot.agent")


class _OutOfTime(Exception):
    """The request's wall time ran out while the model was still answering."""


@dataclass
class _Watch:
    """What the guards remember across the turns of one request."""

    repetition: Repetition = field(default_factory=Repetition)
    asked_for_code: bool = False
    """The model answered with numbers before any code ran, and was asked to compute them."""
    reined_in: bool = False
    """A reply cut in a loop was asked for again with a frequency penalty."""
    asked_for_words: bool = False
    """The model replied with nothing of its own, and was asked for the answer."""
    sent_back_at: int = 0
    """The number of steps run when the model, answering after a run that failed, showed nothing or got a
    hint, was sent back to do what the hint says."""


@dataclass
class _Ran:
    """The vote's runs of the winning program: the step's own when ``reusable`` (nothing ran after them)."""

    runs: list[tuple[ExecutionResult, Observation]]
    reusable: bool
    votes: dict[str, int]


@dataclass
class Step:
    """One piece of code the model asked to run, and what happened."""

    index: int
    code: str
    result: ExecutionResult
    observation: Observation
    """What the model was shown of it."""
    votes: dict[str, int] | None = None
    """With self-consistency: the candidate programs run for this turn, and how many printed this output."""

    def summary(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "status": self.result.status, "votes": self.votes,
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
        self._said: list[str] = []
        self._tables: list[attachments.Table] = []
        """The request's tables, as placed in the workspace (``_place_tables``)."""
        """Everything sandlot wrote into the conversation in its own words (not the outputs), so the
        guards can tell it from the model's."""
        self._usage = [0, 0, 0]  # prompt tokens, completion tokens, model calls
        self._given: list[Counter[Fraction]] = []
        """The number lists of the request's user messages: what a code's copies of them are held against,
        until the copy hint has been given once."""

    @property
    def action_format(self) -> str:
        wanted = self.upstream.config.action_format
        if wanted == "auto" and self.upstream.tools_rejected:
            return "code_blocks"
        return wanted

    async def run(self, messages: list[dict[str, Any]], on_delta: DeltaCallback | None = None,
                  on_step: StepCallback | None = None) -> Outcome:
        """Answer the conversation: model turns and the code and tool calls they ask for."""
        with tracing.span("sandlot.agent", {"sandlot.model": self.upstream.config.name, "sandlot.session.id": self.session.id,
                                            "sandlot.agent.max_steps": self.max_steps}) as span:
            outcome = await self._run(messages, on_delta, on_step)
            span.set_many({"sandlot.agent.stop_reason": outcome.stop_reason, "sandlot.agent.finish_reason": outcome.finish_reason,
                           "sandlot.agent.steps": len(outcome.steps), "sandlot.agent.model_calls": outcome.model_calls,
                           "gen_ai.usage.input_tokens": outcome.prompt_tokens,
                           "gen_ai.usage.output_tokens": outcome.completion_tokens})
            return outcome

    async def _run(self, messages: list[dict[str, Any]], on_delta: DeltaCallback | None,
                   on_step: StepCallback | None) -> Outcome:
        use_tool = self.action_format != "code_blocks"
        registry = list(self.host_tools.registry) if self.host_tools is not None else []
        tools_text = describe_host_tools([t.python_signature() for t in registry if t.expose in ("code", "both")])
        direct = {t.name: t for t in registry if t.expose in ("tool_call", "both")}
        await self._place_tables(messages)
        self._given = transcription.given_lists(attachments.user_texts(messages))
        conversation = self._conversation(messages, use_tool, tools_text)
        fresh_from = 0  # the steps the repetition guards look at: those since the start-over (0: none yet)
        tools = ([python_tool(tools_text)] + [t.openai_tool() for t in direct.values()] if use_tool else []) + \
            self.client_tools
        watch = _Watch()
        code_turns = 0
        stop_reason = "answer"
        while True:
            if code_turns >= self.max_steps:
                stop_reason = "max_steps"
                break
            if self._remaining() <= FINAL_ANSWER_RESERVE:
                stop_reason = "time_limit"
                break
            with tracing.span("sandlot.agent.turn", {"sandlot.turn.number": self._usage[2] + 1}):
                try:
                    turn = await self._ask(conversation, tools or None, on_delta)
                    if not watch.reined_in and runaway(turn.content + "".join(c.arguments for c in turn.tool_calls),
                                                       turn.finish_reason):
                        watch.reined_in = True  # a degenerate loop, cut by the token limit: once, penalise it
                        turn = await self._ask(conversation, tools or None, on_delta,
                                               frequency_penalty=RUNAWAY_PENALTY)
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
                    conversation = self._conversation(messages, use_tool, tools_text)
                    continue
                ours = [call for call in turn.tool_calls if call.name == TOOL_NAME or call.name in direct]
                if client_calls := [call for call in turn.tool_calls if call not in ours]:
                    # Hand back only the client's own calls: it cannot answer a `python` call, and an
                    # unanswered call would make the upstream refuse the conversation's next turn.
                    return self._outcome(Turn(turn.content, client_calls).as_message(), "tool_calls", "client_tool")
                kept, blocks = code_turn(turn.content) if self.action_format != "tool_calls" and not ours else ("", [])
                ran: _Ran | None = None
                if self.settings.candidates > 1 and (program := self._program(turn, direct)):
                    turn, ran = await self._vote(turn, program, conversation, tools or None, direct)
                    ours = [call for call in turn.tool_calls if call.name == TOOL_NAME]
                    kept, blocks = code_turn(turn.content) if not ours else ("", [])
                if ours:
                    await self._run_calls(turn, ours, conversation, watch, on_step, ran)
                elif blocks:
                    await self._run_blocks(kept, blocks, conversation, watch, on_step, ran)
                else:
                    verdict = self._judge_reply(turn, conversation, watch, use_tool)
                    if isinstance(verdict, Outcome):
                        return verdict
                    if verdict is None:
                        continue  # the model was sent back with a nudge
                    stop_reason = verdict
                    break
                code_turns += 1
                recent = self.steps[fresh_from:]
                if repeated_failure([s.code for s in recent], [s.result for s in recent], self.settings.repeat_limit):
                    if fresh_from == 0:
                        # A small model that failed the same way twice copies its own code a third time: once,
                        # start over from the question, told only what went wrong, without the failing code.
                        fresh_from = len(self.steps)
                        conversation = self._conversation(messages, use_tool, tools_text)
                        start_over = prompts.START_OVER.format(
                            error=self.steps[-1].observation.hint or self.steps[-1].observation.output)
                        conversation.append({"role": "user", "content": start_over})
                        self._said.append(prompts.START_OVER.split("{", 1)[0])
                        continue
                    stop_reason = "repeated_failure"
                    break
                if watch.repetition.streak >= 2:
                    stop_reason = "repetition"
                    break
        with tracing.span("sandlot.agent.turn", {"sandlot.turn.number": self._usage[2] + 1, "sandlot.turn.final": True}):
            return await self._final_answer(conversation, tools, stop_reason, on_delta)

    async def _run_calls(self, turn: Turn, calls: list[ToolCall], conversation: list[dict[str, Any]], watch: _Watch,
                         on_step: StepCallback | None, ran: _Ran | None = None) -> None:
        """A turn of tool calls: run each (`python` in the session, host tools on the host), answer each."""
        conversation.append(Turn(turn.content, calls).as_message())
        steps: list[Step] = []
        replies: list[tuple[str, str | None]] = []  # (tool_call_id, a host tool's result, or None for a step)
        for call in calls:
            if call.name == TOOL_NAME:
                steps.append(await self._run_step(tool_call_code(call.arguments), on_step, ran))
                replies.append((call.id, None))
            else:
                replies.append((call.id, await self._call_host_tool(call.name, call.arguments)))
        nudge = self._guard_turn(watch.repetition, steps)
        shown = iter(steps)
        for call_id, content in replies:
            text = content if content is not None else next(shown).observation.text(fenced=False)
            conversation.append({"role": "tool", "tool_call_id": call_id, "content": text})
        if nudge:
            conversation[-1]["content"] += "\n" + nudge
        self._show_figures(conversation, [step.result for step in steps])

    async def _run_blocks(self, kept: str, blocks: list[str], conversation: list[dict[str, Any]], watch: _Watch,
                          on_step: StepCallback | None, ran: _Ran | None = None) -> None:
        """A turn of code blocks: run each, then show the outputs as the next user message."""
        conversation.append({"role": "assistant", "content": kept})
        steps = [await self._run_step(code, on_step, ran) for code in blocks]
        nudge = self._guard_turn(watch.repetition, steps)
        observed = "\n\n".join(step.observation.text(fenced=True) for step in steps)
        conversation.append({"role": "user", "content": observed + ("\n" + nudge if nudge else "")})
        self._show_figures(conversation, [step.result for step in steps])

    def _judge_reply(self, turn: Turn, conversation: list[dict[str, Any]], watch: _Watch,
                     use_tool: bool) -> Outcome | str | None:
        """A reply without code: the answer (an ``Outcome``), a guard's ``stop_reason``, or None when
        the model was sent back once with a nudge (appended to ``conversation``)."""
        def send_back(nudge: str) -> None:
            conversation.append({"role": "assistant", "content": turn.content})
            conversation.append({"role": "user", "content": self._say(nudge)})

        if not self.steps:
            if self.settings.compute_numbers and not watch.asked_for_code and \
                    uncomputed_numbers(turn.content, _texts(conversation, but="assistant")):
                watch.asked_for_code = True  # numbers nobody computed: once, ask for the code
                send_back(prompts.UNCOMPUTED_NUDGE[use_tool])
                return None
            # No code ran: ordinary chat passes through as it is.
            return self._outcome({"role": "assistant", "content": turn.content}, turn.finish_reason or "stop",
                                 "answer")
        answer = own_words(turn.content, self._said)
        if answer and watch.sent_back_at < len(self.steps) and (nudge := _unheeded(self.steps[-1], answer)):
            watch.sent_back_at = len(self.steps)  # once per run: the model may know better than the hint
            send_back(nudge)
            return None
        if answer:
            content = turn.content if answer == turn.content.strip() else answer
            return self._outcome({"role": "assistant", "content": content}, turn.finish_reason or "stop", "answer")
        if watch.asked_for_words:
            return "no_answer"
        watch.asked_for_words = True  # the reply was only sandlot's output or words: once, ask for the answer
        send_back(prompts.ECHO_NUDGE)
        return None

    def _conversation(self, messages: list[dict[str, Any]], use_tool: bool, tools_text: str) -> list[dict[str, Any]]:
        """sandlot's system prompt, the worked example, then the request's messages as they came.

        A request with a system message of its own has given the model its instructions: sandlot's
        prompt is then the protocol only, without rules or example (a 0.5B model copies the
        example's form over the client's instructions), and the client's system message follows it."""
        instructed = any(m.get("role") in ("system", "developer") for m in messages)
        system = prompts.system_prompt(use_tool, tools_text, client_instructions=instructed)
        # The question is not the model's to say either: a small model sometimes answers by repeating it.
        question = next((m["content"] for m in reversed(messages) if m.get("role") == "user"
                         and isinstance(m.get("content"), str)), "")
        self._said = [system, prompts.NO_OUTPUT, question, *(attachments.reference(t) for t in self._tables)]
        messages = attachments.with_references(messages, self._tables)
        if instructed:
            return [{"role": "system", "content": system}, *messages]
        self._said += [prompts.EXAMPLE_QUESTION, prompts.EXAMPLE_ANSWER]
        return [{"role": "system", "content": system}, *prompts.worked_example(use_tool), *messages]

    async def _place_tables(self, messages: list[dict[str, Any]]) -> None:
        """Tables pasted into the user's messages become workspace files (once per request); every
        conversation ``_conversation`` builds shows each by its reference instead of its text."""
        tables = attachments.find_tables(attachments.user_texts(messages))
        if not tables:
            return
        try:
            workspace = await self.session.open_workspace()
            self._tables = await asyncio.to_thread(attachments.place, tables, workspace)
        except (OSError, SandlotError) as exc:  # a full workspace, say: the model can still copy the data
            log.warning("sandlot: the agent could not save the question's tables: %s", exc)

    def _guard_turn(self, repetition: Repetition, steps: list[Step]) -> str:
        """Record a code turn with the repetition guard; the nudge to add to its output, if any."""
        if not steps:
            return ""
        value = "\n".join(step.observation.value for step in steps if step.observation.value)
        failed = any(step.result.status != "ok" for step in steps)
        # Nothing printed twice: the print nudge is already in the output, "you have this output" would be wrong.
        if repetition.record([step.code for step in steps], value, failed=failed) == 1 and value:
            return self._say(prompts.REPEATED_NUDGE)
        return ""

    def _say(self, text: str) -> str:
        self._said.append(text)
        return text

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

    async def _run_step(self, code: str, on_step: StepCallback | None, ran: _Ran | None = None) -> Step:
        """Run ``code`` as the next step (or take its run from the vote, when that was the session's last)."""
        if ran is not None and ran.reusable:
            result, observation = ran.runs.pop(0)
        else:
            with tracing.span("sandlot.agent.step", {"sandlot.step.number": len(self.steps) + 1,
                                                     "sandlot.step.code_bytes": len(code)}) as span:
                result, observation = await self._execute(code)
                span.set("sandlot.status", result.status)
        if observation.hint:
            self._said.append(observation.hint)
        step = Step(len(self.steps) + 1, code, result, observation, ran.votes if ran is not None else None)
        self.steps.append(step)
        if on_step is not None:
            on_step(step)
        return step

    async def _execute(self, code: str) -> tuple[ExecutionResult, Observation]:
        """Run ``code`` in the session; its result and what the model would be shown of it."""
        timeout = max(0.5, min(self.session.limits.timeout, self._remaining() - FINAL_ANSWER_RESERVE))
        result = await self.session.execute(code, timeout=timeout)
        files = [f.path for f in self.session.workspace.list_files(max_entries=11)] if wants_files(result) else None
        names = await self._close_names(*missing) if (missing := missing_name(result)) else None
        observation = observe(result, code, self.settings.result_budget, self.settings.traceback_frames, timeout,
                              files, names, self._given)
        if observation.hint.startswith(prompts.COPY_HINT.split("{", 1)[0]):
            # Once per request: a model that cannot copy the list whole would spend every step left on it.
            self._given = []
        return result, observation

    async def _close_names(self, module: str, name: str) -> list[str] | None:
        """The names ``module`` has closest to ``name``, looked up in the session itself (its environment,
        not the host's); None if that cannot be told."""
        if self._remaining() <= 2 * FINAL_ANSWER_RESERVE:
            return None
        try:
            lookup = await self.session.execute(name_lookup(module, name), timeout=_LOOKUP_TIMEOUT)
            found = json.loads(lookup.stdout) if lookup.status == "ok" else None
        except (SandlotError, ValueError):
            return None
        return [str(n) for n in found] if isinstance(found, list) else None

    def _program(self, turn: Turn, direct: dict[str, Any]) -> list[str]:
        """The code a turn asks to run, if it asks for nothing else (no host or client tool): what a
        candidate of the vote must be."""
        if turn.tool_calls:
            if any(call.name != TOOL_NAME for call in turn.tool_calls):
                return []
            return [tool_call_code(call.arguments) for call in turn.tool_calls]
        return code_turn(turn.content)[1] if self.action_format != "tool_calls" else []

    async def _vote(self, first: Turn, program: list[str], conversation: list[dict[str, Any]],
                    tools: list[dict[str, Any]] | None, direct: dict[str, Any]) -> tuple[Turn, _Ran]:
        """Self-consistency for one code turn: sample more programs, run them all, keep the turn whose
        output most of them printed (``voting``), and its runs when they were the session's last."""
        settings = self.settings
        seed = self.params.get("seed")
        candidates = [(first, program)]
        with tracing.span("sandlot.agent.vote", {"sandlot.vote.candidates": settings.candidates}) as span:
            for number in range(1, settings.candidates):
                if self._remaining() <= 2 * FINAL_ANSWER_RESERVE:
                    break
                # A seed of its own per candidate: different samples, the same ones on every run of the request.
                extra = {"temperature": settings.candidate_temperature,
                         "seed": (seed if isinstance(seed, int) else 0) + number}
                try:
                    turn = await self._ask(conversation, tools, None, **extra)
                except _OutOfTime:
                    break
                if alternative := self._program(turn, direct):
                    candidates.append((turn, alternative))
            # The first candidate runs last: it wins most votes, and its runs are then the session's latest
            # state, so they are the step's without running it again.
            order = [*range(1, len(candidates)), 0]
            runs: dict[int, list[tuple[ExecutionResult, Observation]]] = {}
            for index in order:
                runs[index] = [await self._execute(code) for code in candidates[index][1]]
            ballots = [voting.Ballot(" ".join(o.value for _, o in runs[i] if o.value),
                                     any(r.status != "ok" for r, _ in runs[i])) for i in range(len(candidates))]
            chosen = voting.winner(ballots)
            votes = {"candidates": len(candidates), "agreeing": voting.agreeing(ballots, chosen)}
            span.set_many({"sandlot.vote.run": len(candidates), "sandlot.vote.chosen": chosen,
                           "sandlot.vote.agreeing": votes["agreeing"]})
        return candidates[chosen][0], _Ran(runs[chosen], reusable=chosen == order[-1], votes=votes)

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

    def _show_figures(self, conversation: list[dict[str, Any]], results: list[ExecutionResult]) -> None:
        if not self.upstream.config.vision:
            return
        parts = [part for result in results for part in image_parts(result)]
        if parts:
            conversation.append({"role": "user", "content": [{"type": "text", "text": "Figures from that code:"},
                                                              *parts]})

    def _last_value(self) -> str:
        """What the code last printed or returned (the last run that showed something), or ''."""
        return next((step.observation.value for step in reversed(self.steps) if step.observation.value), "")

    async def _final_answer(self, conversation: list[dict[str, Any]], tools: list[dict[str, Any]],
                            stop_reason: str, on_delta: DeltaCallback | None) -> Outcome:
        why = prompts.STOP_WHY[stop_reason].format(max_steps=self.max_steps)
        finish_reason = "length" if stop_reason in LIMIT_STOPS else "stop"
        last = self._last_value()
        if stop_reason != "no_answer" and self._remaining() > 1.0:
            reminder = prompts.LAST_RESULT.format(value=_cut(last, _LAST_VALUE_IN_REQUEST)) if last else ""
            request = prompts.FINAL_ANSWER_REQUEST.format(why=why, last=reminder)
            conversation.append({"role": "user", "content": self._say(request)})
            extra = {"tool_choice": "none"} if tools else {}
            try:
                turn = await self._ask(conversation, tools or None, on_delta, **extra)
            except Exception:  # a failing final call must not hide the work done: fall back below
                turn = None
            if turn is not None and (answer := own_words(turn.content, self._said)):
                return self._outcome({"role": "assistant", "content": answer}, finish_reason, stop_reason)
        text = prompts.WRITTEN_ANSWER.format(why=why)
        if stop_reason == "no_answer":
            text += " " + prompts.WRITTEN_NO_ANSWER
        if last:
            text += prompts.WRITTEN_LAST_RESULT.format(value=_cut(last, _LAST_VALUE_IN_REPLY))
        elif self.steps:
            text += f" The last run ended with status {self.steps[-1].result.status}."
        if on_delta is not None:
            on_delta(text)
        return self._outcome({"role": "assistant", "content": text}, finish_reason, stop_reason)

    def _outcome(self, message: dict[str, Any], finish_reason: str, stop_reason: str) -> Outcome:
        direct_calls = list(self.host_tools.calls) if self.host_tools is not None else []
        return Outcome(message, finish_reason, stop_reason, list(self.steps), self._usage[0], self._usage[1],
                       self._usage[2], direct_calls)

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()


def _unheeded(step: Step, answer: str) -> str:
    """What to tell a model that answers straight after ``step`` without doing what its observation's
    hint asked ('' if nothing): an answer after a failed run stands on nothing; so does a number after a
    run that showed nothing, or after a hint (a value the code only wrote down, a column of values where
    one may be wanted). An answer without numbers ("Saved.") after a silent run is one."""
    if step.result.status != "ok":
        return prompts.FAILED_NUDGE
    if not has_number(answer):
        return ""
    if not step.observation.value:
        return prompts.SILENT_NUDGE
    return prompts.HINT_NUDGE if step.observation.hint else ""


def _texts(messages: list[dict[str, Any]], *, but: str) -> list[str]:
    """The text of the messages (text parts of multi-part ones), but those of role ``but``."""
    texts = []
    for message in messages:
        if message.get("role") == but:
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
    return texts


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."
