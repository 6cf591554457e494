"""Streaming a run as Server-Sent Events.

Events: ``stdout`` and ``stderr`` ({"name", "text"}), ``output`` (one nbformat
display_data or execute_result object), ``error`` (the nbformat error object
of a failing cell; or, if the server itself fails mid-stream, the usual
``{"error": {"type", "message"}}`` body, and then the stream ends without
``done``), and a final ``done`` with the complete execution result. A one-shot
run or command that is refused before it has its sandbox (no capacity, the
zygote restarting) is its HTTP error instead, before the stream begins
(``stream_once_begun``). A shell command streams the same way: ``stdout`` and
``stderr``, then ``done`` with its command result.

A client that disconnects cancels the run: a one-shot run's sandbox is
killed; a session cell is interrupted (its state is kept), or, while it still
waits for its turn, never runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from fastapi.responses import StreamingResponse
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


Start = Callable[[EventCallback], Awaitable[R]]
OnDisconnect = Callable[[asyncio.Task[R]], Awaitable[None]]


class _Run(Generic[R]):
    """A run started now, its events queued as SSE frames until the response sends them."""

    def __init__(self, start: Start[R]) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run(start))

    def on_event(self, kind: str, payload: Any) -> None:
        if kind in ("stdout", "stderr"):
            self.queue.put_nowait(format_event(kind, {"name": kind, "text": payload}))
        elif kind == "output":
            output = payload.model_dump(mode="json")
            self.queue.put_nowait(format_event("error" if output["output_type"] == "error" else "output", output))

    async def _run(self, start: Start[R]) -> R:
        try:
            return await start(self.on_event)
        finally:
            self.queue.put_nowait(None)


async def stream_run(start: Start[R], on_disconnect: OnDisconnect[R]) -> AsyncIterator[bytes]:
    """The events of one run (an ``ExecutionResult``) or shell command (a ``CommandResult``), ``done`` last;
    the run starts when the response does."""
    async for frame in _frames(_Run(start), on_disconnect):
        yield frame


async def stream_once_begun(start: Start[R], on_disconnect: OnDisconnect[R], begun: asyncio.Event) -> StreamingResponse:
    """Start the run now and answer once ``begun`` is set (the run has its sandbox).

    A run refused before then (``429`` no sandbox became free, ``503`` the zygote is restarting) is that
    HTTP error, with its ``Retry-After``, as the same run without a stream would be: a ``200`` whose only
    event is the error would leave the client nothing to honour.
    """
    run = _Run(start)
    waiting = asyncio.ensure_future(begun.wait())
    try:
        await asyncio.wait((run.task, waiting), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        run.task.cancel()  # the request itself went away while the run waited for a sandbox
        raise
    finally:
        waiting.cancel()
    if run.task.done() and not begun.is_set():
        run.task.result()  # raises what refused the run; a run cannot end well before it began
    return StreamingResponse(_frames(run, on_disconnect), media_type=SSE_MEDIA_TYPE)


async def _frames(run: _Run[R], on_disconnect: OnDisconnect[R]) -> AsyncIterator[bytes]:
    task = run.task
    finished = False
    try:
        while True:
            item = await run.queue.get()
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
