"""OpenAI's chat-completions shapes: the request we accept, the responses we give.

Requests take OpenAI's fields plus three of sandlot's (documented in
docs/agent.md): ``session_id`` to continue an existing session,
``keep_session`` to keep the request's new session afterwards, and
``max_steps``. Responses are OpenAI's ``chat.completion`` and
``chat.completion.chunk`` objects plus one field, ``sandlot``, with the
executed steps, the session and why the loop stopped. Step events in a stream
are chunks with no choices and a ``sandlot.step``, so OpenAI's SDKs parse them
like any other chunk.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# OpenAI parameters forwarded to the upstream as they are.
PASSTHROUGH = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "presence_penalty",
               "frequency_penalty", "user", "response_format", "logit_bias", "reasoning_effort", "tool_choice",
               "parallel_tool_calls")


class ChatRequest(BaseModel):
    """A chat-completions request (OpenAI's fields; unknown ones are ignored)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    session_id: str | None = Field(None, description="sandlot: continue in this existing session (yours).")
    keep_session: bool = Field(False, description="sandlot: keep the request's new session; its id is returned.")
    max_steps: int | None = Field(None, ge=1, description="sandlot: fewer code steps than the server's maximum.")

    def upstream_params(self) -> dict[str, Any]:
        fields = {**self.model_dump(exclude_none=True), **(self.model_extra or {})}
        return {name: fields[name] for name in PASSTHROUGH if name in fields}

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.get("include_usage"))


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def completion(cid: str, model: str, message: dict[str, Any], finish_reason: str, usage: dict[str, int],
               sandlot: dict[str, Any]) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": usage, "sandlot": sandlot}


def chunk(cid: str, model: str, *, delta: dict[str, Any] | None = None, finish_reason: str | None = None,
          usage: dict[str, int] | None = None, sandlot: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                            "model": model, "choices": []}
    if delta is not None or finish_reason is not None:
        body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason, "logprobs": None}]
    if usage is not None:
        body["usage"] = usage
    if sandlot is not None:
        body["sandlot"] = sandlot
    return body


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def model_list(names: list[str]) -> dict[str, Any]:
    created = int(time.time())
    return {"object": "list", "data": [{"id": n, "object": "model", "created": created, "owned_by": "sandlot"}
                                       for n in names]}
