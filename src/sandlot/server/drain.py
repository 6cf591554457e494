"""Graceful shutdown: the calls in flight, and how each one ends when the server stops.

On SIGTERM or SIGINT the server keeps accepting connections: new API calls get
``503`` (``ServerState.draining``) and calls in flight get up to
``shutdown_grace`` seconds to finish. When the grace is over, whatever still
runs is stopped here, so that it ends the way the contract says, not as a
connection cut in the middle: a call that has not answered yet gets the
contract's ``503`` body, and a stream in progress gets a last ``error`` event
and ends. uvicorn's own shutdown then finds nothing left to cancel (it would
answer a plain-text 500 and log a ``CancelledError`` traceback per call).

Stopping a call cancels its task: a one-shot run's sandbox is killed, a
session's cell is interrupted or its interpreter killed, as on a client
disconnect. The engine removes every sandbox afterwards either way.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.types import Send

STOPPED_MESSAGE = "the server shut down before this call finished (its shutdown grace is over)"
TRACKED_PREFIXES = ("/v1/", "/mcp")
"""The API calls the drain tracks (``RequestGuard`` enters and leaves them)."""


class Drain:
    """The API calls in flight, by the task that serves each."""

    def __init__(self) -> None:
        self._calls: dict[asyncio.Task[Any], bool] = {}  # task -> waited for (GET streams are not)
        self._stopped: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"<Drain calls={len(self._calls)} waited={self.waited} stopped={len(self._stopped)}>"

    @property
    def waited(self) -> int:
        """Calls the grace waits for: every call but GETs, which are quick or open-ended (an MCP event stream)."""
        return sum(1 for waited in self._calls.values() if waited)

    def enter(self, task: asyncio.Task[Any], *, waited: bool) -> None:
        self._calls[task] = waited

    def leave(self, task: asyncio.Task[Any]) -> None:
        self._calls.pop(task, None)
        self._stopped.discard(task)

    def was_stopped(self, task: asyncio.Task[Any]) -> bool:
        return task in self._stopped

    async def wait(self, timeout: float, *, everything: bool = False) -> bool:
        """Wait up to ``timeout`` seconds for the waited-for calls (or all calls) to end; whether they did."""
        deadline = time.monotonic() + timeout
        while (self._calls if everything else self.waited) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not (self._calls if everything else self.waited)

    def stop_all(self) -> int:
        """Stop every call still in flight (each then answers as ``answer_stopped`` says); how many."""
        stopping = [task for task in self._calls if task not in self._stopped and not task.done()]
        for task in stopping:
            self._stopped.add(task)
            task.cancel(STOPPED_MESSAGE)
        return len(stopping)


async def answer_stopped(send: Send, response: dict[str, bool]) -> None:
    """How a call the drain stopped ends: the 503 body if it had not answered, an ``error`` event if it streamed."""
    error = {"error": {"type": "unavailable", "message": STOPPED_MESSAGE}}
    if not response["started"]:
        body = json.dumps(error).encode()
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
    elif response["stream"] and not response["ended"]:
        # The same ending as a server failure mid-stream (docs/api.md): an `error` event with the
        # contract's body, and no `done`.
        event = f"event: error\ndata: {json.dumps(error, separators=(',', ':'))}\n\n".encode()
        await send({"type": "http.response.body", "body": event, "more_body": False})
    # A plain response that had started goes out whole (its start and body are sent together).
