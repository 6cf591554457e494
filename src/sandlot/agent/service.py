"""The agent endpoint's logic, apart from HTTP: models, sessions, one request's loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

import anyio

from .._errors import NotFoundError
from ..engine import Engine, Session
from . import openai_format as fmt
from .config import AgentSettings, UpstreamModel
from .loop import AgentLoop, Outcome, Step
from .upstream import Upstream


class AgentService:
    def __init__(self, engine: Engine, models: tuple[UpstreamModel, ...], settings: AgentSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.upstreams = {model.name: Upstream(model) for model in models}

    @property
    def model_names(self) -> list[str]:
        return list(self.upstreams)

    async def close(self) -> None:
        for upstream in self.upstreams.values():
            await upstream.close()

    def upstream_for(self, name: str | None) -> Upstream:
        """The named model; a request that names none gets the first configured one."""
        if not self.upstreams:
            raise NotFoundError("no upstream model is configured: start the server with --model-url and --model")
        if not name:
            return next(iter(self.upstreams.values()))
        if name not in self.upstreams:
            raise NotFoundError(f"no model {name!r}; this server serves: {', '.join(self.upstreams)}")
        return self.upstreams[name]

    def loop(self, request: fmt.ChatRequest, upstream: Upstream, session: Session) -> AgentLoop:
        return AgentLoop(upstream, session, self.settings,
                         max_steps=min(request.max_steps or self.settings.max_steps, self.settings.max_steps),
                         wall_time=self.settings.max_wall_time, client_tools=request.tools,
                         params=request.upstream_params(), host_tools=self.engine.tool_broker(session.tool_names))

    async def open_session(self, request: fmt.ChatRequest, owned: Session | None, owner: str = "") -> tuple[Session, bool]:
        """The session to run in (a new one is ``owner``'s: its tenant too), and whether this request must delete it
        afterwards."""
        if owned is not None:
            return owned, False
        session = await self.engine.create_session(owner=owner)
        return session, not request.keep_session

    async def complete(self, request: fmt.ChatRequest, session: Session, upstream: Upstream,
                       kept: bool) -> dict[str, Any]:
        outcome = await self.loop(request, upstream, session).run(request.messages)
        return fmt.completion(fmt.completion_id(), upstream.config.name, outcome.message, outcome.finish_reason,
                              fmt.usage(outcome.prompt_tokens, outcome.completion_tokens),
                              self._extra(outcome, session, kept))

    async def stream(self, request: fmt.ChatRequest, session: Session, upstream: Upstream,
                     kept: bool) -> AsyncGenerator[bytes, None]:
        """SSE lines: content deltas, step events, the finish chunk, usage, [DONE]."""
        cid, model = fmt.completion_id(), upstream.config.name
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def on_delta(text: str) -> None:
            queue.put_nowait(fmt.chunk(cid, model, delta={"content": text}))

        def on_step(step: Step) -> None:
            queue.put_nowait(fmt.chunk(cid, model, sandlot={"step": step.summary(), "session_id": session.id}))

        async def run() -> Outcome:
            try:
                return await self.loop(request, upstream, session).run(request.messages, on_delta, on_step)
            finally:
                queue.put_nowait(None)

        task = asyncio.get_running_loop().create_task(run())
        try:
            yield _sse(fmt.chunk(cid, model, delta={"role": "assistant", "content": ""}))
            while (item := await queue.get()) is not None:
                yield _sse(item)
            try:
                outcome = await task
            except Exception as exc:
                error_type = getattr(exc, "error_type", "internal_error")
                yield _sse({"error": {"type": error_type, "message": str(exc)}})
                return
            if outcome.finish_reason == "tool_calls":
                calls = outcome.message.get("tool_calls", [])
                yield _sse(fmt.chunk(cid, model, delta={"tool_calls": [
                    {"index": i, **call} for i, call in enumerate(calls)]}))
            yield _sse(fmt.chunk(cid, model, delta={}, finish_reason=outcome.finish_reason,
                                 sandlot=self._extra(outcome, session, kept)))
            if request.include_usage:
                yield _sse(fmt.chunk(cid, model, usage=fmt.usage(outcome.prompt_tokens, outcome.completion_tokens)))
            yield b"data: [DONE]\n\n"
        finally:
            if not task.done():
                task.cancel()  # the client went away: stop the model and the code
                with anyio.CancelScope(shield=True):  # the caller's scope may be cancelled: wait anyway
                    await asyncio.gather(task, return_exceptions=True)

    @staticmethod
    def _extra(outcome: Outcome, session: Session, kept: bool) -> dict[str, Any]:
        return {"session_id": session.id if kept else None, "stop_reason": outcome.stop_reason,
                "model_calls": outcome.model_calls, "steps": [step.summary() for step in outcome.steps],
                "tool_calls": [call.model_dump() for call in outcome.tool_calls]}


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
