"""Streaming a run as Server-Sent Events.

Events: ``stdout`` and ``stderr`` ({"name", "text"}), ``output`` (one nbformat
display_data or execute_result object), ``error`` (the nbformat error object
of a failing cell; or, if the server itself fails mid-stream, the usual
``{"error": {"type", "message"}}`` body, and then the stream ends without
``done``), and a final ``done`` with the complete execution result. A shell command
streams the same way: ``stdout`` and ``stderr``, then ``done`` with its
command result.

A client that disconnects cancels the run: a one-shot run's sandbox is
killed; a session cell is interrupted (its state is kept), or, while it still
waits for its turn, never runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from .._errors import SandlotError
from ..engine import EventCallback

SSE_MEDIA_TYPE = "text/event-stream"
R = TypeVar("R", bound=BaseModel)


def format_event(name: str, data: Any) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {name}\ndata: {payload}\n\n".encode()


def wants_stream(stream_flag: bool, accept: str | None) -> bool:
    return stream_flag or SSE_MEDIA_TYPE in (accept or "")


async def stream_run(start: Callable[[EventCallback], Awaitable[R]],
                     on_disconnect: Callable[[asyncio.Task[R]], Awaitable[None]]) -> AsyncIterator[bytes]:
    """The events of one run (an ``ExecutionResult``) or shell command (a ``CommandResult``), ``done`` last."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def on_event(kind: str, payload: Any) -> None:
        if kind in ("stdout", "stderr"):
            queue.put_nowait(format_event(kind, {"name": kind, "text": payload}))
        elif kind == "output":
            output = payload.model_dump(mode="json")
            queue.put_nowait(format_event("error" if output["output_type"] == "error" else "output", output))

    async def run() -> R:
        try:
            return await start(on_event)
        finally:
            queue.put_nowait(None)

    task = asyncio.get_running_loop().create_task(run())
    finished = False
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            yield item
        try:
            result = await task
        except SandlotError as exc:
            yield format_event("error", {"error": {"type": exc.error_type, "message": str(exc)}})
        else:
            yield format_event("done", result.model_dump(mode="json"))
        finished = True
    finally:
        if not finished and not task.done():
            await on_disconnect(task)
        with contextlib.suppress(BaseException):
            if task.done() and not task.cancelled():
                task.exception()
