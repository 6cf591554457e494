"""A scripted OpenAI-compatible model server: the agent loop's seam, faked.

A real HTTP server on a loopback port that answers ``/v1/chat/completions``
by replaying a script of replies (text, tool calls, or both), streamed or not,
each after a fixed latency, and records every request it received (body,
headers, and the usage it answered with) so tests can check what the model was
shown and what it was sent. Token counts are deterministic stand-ins:
a quarter of the characters sent and received.

    with ScriptedUpstream([Reply(tool_code="print(6*7)"), Reply("It is 42.")]) as model:
        ...  # point sandlot at model.base_url
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


@dataclass
class Reply:
    """One scripted assistant reply."""

    content: str | None = None
    tool_code: str | list[str] | None = None
    """Code for `python` tool calls (one call per string)."""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Other tool calls: (name, arguments)."""
    finish_reason: str | None = None
    status: int = 200
    """Not 200: answer with this HTTP error status instead, ``content`` as the error's message."""

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        codes = [self.tool_code] if isinstance(self.tool_code, str) else list(self.tool_code or [])
        return [("python", {"code": code}) for code in codes] + list(self.tool_calls)


Script = list[Reply | Callable[[dict[str, Any]], Reply]]


class ScriptedUpstream:
    def __init__(self, script: Script, *, latency: float = 0.0, model: str = "scripted") -> None:
        self.script = list(script)
        self.latency = latency
        self.model = model
        self.requests: list[dict[str, Any]] = []
        """Every request body received, in order."""
        self.headers: list[dict[str, str]] = []
        """The headers of each request in ``requests`` (names lower-cased)."""
        self.usages: list[dict[str, int]] = []
        """The token usage reported for each scripted reply, in order."""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def __enter__(self) -> ScriptedUpstream:
        # IPPROTO_TCP explicitly: asyncio only turns Nagle off for sockets that say so; without it
        # each kept-alive response waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        self._server = uvicorn.Server(uvicorn.Config(self._app(), log_config=None, access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the scripted upstream did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(10)

    @property
    def remaining(self) -> int:
        return len(self.script)

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "test"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = await request.json()
            self.requests.append(body)
            self.headers.append({name.lower(): value for name, value in request.headers.items()})
            if self.latency:
                await asyncio.sleep(self.latency)
            if not self.script:
                return JSONResponse({"error": {"message": "the script is exhausted", "type": "script"}}, 500)
            step = self.script.pop(0)
            reply = step(body) if callable(step) else step
            if reply.status != 200:
                return JSONResponse({"error": {"message": reply.content or "error", "type": "scripted_error"}},
                                    reply.status)
            usage = {"prompt_tokens": len(json.dumps(body.get("messages", []))) // 4,
                     "completion_tokens": (len(reply.content or "") + len(json.dumps(reply.calls()))) // 4}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            self.usages.append(usage)
            if body.get("stream"):
                return StreamingResponse(self._chunks(reply, usage, body), media_type="text/event-stream")
            return _completion(self.model, reply, usage)

        return app

    async def _chunks(self, reply: Reply, usage: dict[str, int], body: dict[str, Any]) -> AsyncIterator[bytes]:
        def sse(payload: dict[str, Any]) -> bytes:
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        base = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0, "model": self.model}
        yield sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
        text = reply.content or ""
        for piece in _pieces(text, 3):
            yield sse({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        for index, (name, arguments) in enumerate(reply.calls()):
            call = {"index": index, "id": f"call_{index}", "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)}}
            yield sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]})
        yield sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": _finish(reply)}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            yield sse({**base, "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"


def _completion(model: str, reply: Reply, usage: dict[str, int]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.calls():
        message["tool_calls"] = [{"id": f"call_{i}", "type": "function",
                                  "function": {"name": name, "arguments": json.dumps(arguments)}}
                                 for i, (name, arguments) in enumerate(reply.calls())]
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply)}], "usage": usage}


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.calls() else "stop")


def _pieces(text: str, n: int) -> Iterator[str]:
    size = max(1, -(-len(text) // n))
    for i in range(0, len(text), size):
        yield text[i:i + size]
