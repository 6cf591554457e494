"""Calling the upstream model with the official ``openai`` SDK.

One ``AsyncOpenAI`` client per configured model. A call returns a ``Turn``:
the assistant's text, its tool calls and the token usage, whether the upstream
streamed it or not. The SDK retries what is safe to retry (connection errors,
429, 5xx) with backoff; what still fails becomes ``UpstreamError`` (502) or
``UpstreamTimeoutError`` (504), with the upstream's message but never its key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai

from .. import tracing
from .._errors import InvalidRequestError, UpstreamError, UpstreamTimeoutError
from .config import UpstreamModel

DeltaCallback = Callable[[str], None]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str

    def as_message_part(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Turn:
    """One assistant reply from the upstream."""

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            message["tool_calls"] = [call.as_message_part() for call in self.tool_calls]
        return message


class Upstream:
    """A configured upstream model and its SDK client."""

    def __init__(self, config: UpstreamModel) -> None:
        self.config = config
        self.tools_rejected = False  # learned when the upstream refuses the `tools` parameter
        # The key is sent with each call, read from the environment then (see turn()); the SDK
        # insists on one here, and refuses an empty one: a variable unset at start-up must not stop the server.
        self._client = openai.AsyncOpenAI(base_url=config.base_url, api_key="sandlot-key-per-call",
                                          timeout=config.timeout, max_retries=config.max_retries)

    async def close(self) -> None:
        await self._client.close()

    async def turn(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None,
                   params: dict[str, Any], on_delta: DeltaCallback | None = None) -> Turn:
        """Ask the model for its next reply; with ``on_delta``, stream the text as it comes."""
        with tracing.span(f"chat {self.config.upstream_name}", {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": self.config.upstream_name, "sandlot.model": self.config.name,
                "server.address": self._client.base_url.host, "sandlot.stream": on_delta is not None}, kind="client") as span:
            turn = await self._turn(messages, tools=tools, params=params, on_delta=on_delta)
            span.set_many({"gen_ai.usage.input_tokens": turn.prompt_tokens, "gen_ai.usage.output_tokens": turn.completion_tokens,
                           "gen_ai.response.finish_reasons": [turn.finish_reason] if turn.finish_reason else None,
                           "sandlot.tool_calls": len(turn.tool_calls)})
            return turn

    async def _turn(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None,
                    params: dict[str, Any], on_delta: DeltaCallback | None) -> Turn:
        kwargs: dict[str, Any] = {"model": self.config.upstream_name, "messages": messages, **params,
                                  # The key is read at call time, as documented, not when the client was made.
                                  "extra_headers": tracing.inject({"Authorization": f"Bearer {self.config.api_key()}"})}
        if tools:
            kwargs["tools"] = tools
        else:  # without tools these would make the upstream refuse the request
            kwargs.pop("tool_choice", None)
            kwargs.pop("parallel_tool_calls", None)
        try:
            if on_delta is None:
                response = await self._client.chat.completions.create(**kwargs)
                return _turn_from_response(response)
            stream = await self._client.chat.completions.create(
                **kwargs, stream=True, stream_options={"include_usage": True})
            return await _turn_from_stream(stream, on_delta)
        except openai.APITimeoutError as exc:
            raise UpstreamTimeoutError(f"the model {self.config.name!r} did not answer within "
                                       f"{self.config.timeout:g}s") from exc
        except openai.APIConnectionError as exc:
            raise UpstreamError(f"could not reach the model {self.config.name!r} at {self.config.base_url}") from exc
        except openai.BadRequestError as exc:
            if tools and "tool" in str(exc.message).lower():
                self.tools_rejected = True
            raise InvalidRequestError(f"the model {self.config.name!r} refused the request: {_message(exc)}") from exc
        except openai.APIStatusError as exc:
            raise UpstreamError(f"the model {self.config.name!r} failed with HTTP {exc.status_code}: "
                                f"{_message(exc)}") from exc


def _turn_from_response(response: Any) -> Turn:
    choice = response.choices[0] if response.choices else None
    turn = Turn()
    if choice is not None:
        turn.content = choice.message.content or ""
        turn.finish_reason = choice.finish_reason
        for call in choice.message.tool_calls or []:
            function = getattr(call, "function", None)
            if function is not None:
                turn.tool_calls.append(ToolCall(call.id or f"call_{len(turn.tool_calls)}", function.name,
                                                function.arguments or ""))
    if response.usage is not None:
        turn.prompt_tokens = response.usage.prompt_tokens or 0
        turn.completion_tokens = response.usage.completion_tokens or 0
    return turn


async def _turn_from_stream(stream: Any, on_delta: DeltaCallback) -> Turn:
    turn = Turn()
    calls: dict[int, ToolCall] = {}
    async for chunk in stream:
        if chunk.usage is not None:
            turn.prompt_tokens = chunk.usage.prompt_tokens or 0
            turn.completion_tokens = chunk.usage.completion_tokens or 0
        for choice in chunk.choices or []:
            delta = choice.delta
            if delta.content:
                turn.content += delta.content
                on_delta(delta.content)
            for part in delta.tool_calls or []:
                call = calls.setdefault(part.index, ToolCall(part.id or f"call_{part.index}", "", ""))
                if part.id:
                    call.id = part.id
                if part.function is not None:
                    call.name += part.function.name or ""
                    call.arguments += part.function.arguments or ""
            if choice.finish_reason:
                turn.finish_reason = choice.finish_reason
    turn.tool_calls = [calls[i] for i in sorted(calls)]
    return turn


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:500]
    return str(exc.message)[:500]
