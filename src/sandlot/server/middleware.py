"""ASGI middleware: the body's size and read-time limits, the drain's tracking, one log line and metric per request.

Pure ASGI (not BaseHTTPMiddleware), so streaming responses and client
disconnects pass through untouched.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import TooLargeError
from .drain import TRACKED_PREFIXES, Drain, answer_stopped
from .logs import log_request
from .metrics import Metrics

# Metric labels take the method only from this set: any token is a valid HTTP method, and a
# label per made-up method would let any client grow the metrics without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


class _TooSlow(Exception):
    """The client did not send the request's body within the read timeout."""


class RequestGuard:
    """The one ASGI layer around the app: the body's limits, the drain's tracking, and the record.

    One layer, not a size guard and a drain guard stacked: every message of every request passed
    through each layer's own ``receive`` and ``send`` wrappers, and ASGI layers are paid per message.
    """

    def __init__(self, app: ASGIApp, *, max_body: int, metrics: Metrics, drain: Drain,
                 read_timeout: float = 30.0) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics
        self.drain = drain
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        message_413 = f"the request body is over the limit of {self.max_body} bytes"
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            await _send_error(send, 413, "too_large", message_413)
            self._record(scope, 413, started)
            return
        message_408 = f"the request body did not arrive within {self.read_timeout:g}s"
        received = 0
        too_large = too_slow = body_done = replaced = False
        response = {"started": False, "stream": False, "ended": False}  # what the drain's ending needs to know
        body_deadline = time.monotonic() + self.read_timeout

        async def limited_receive() -> Message:
            nonlocal received, too_large, too_slow, body_done
            if body_done:
                return await receive()  # after the body: only a disconnect, however late
            try:
                message = await asyncio.wait_for(receive(), max(0.0, body_deadline - time.monotonic()))
            except TimeoutError:
                too_slow = True
                raise _TooSlow(message_408) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_body:
                    too_large = True
                    raise TooLargeError(message_413)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replaced, status
            if replaced:
                return
            if message["type"] == "http.response.start":
                response["started"] = True
                if too_slow:
                    replaced = True  # the app saw a broken body (FastAPI says 400); the answer is 408
                    status = 408
                    await _send_error(send, 408, "request_timeout", message_408)
                    return
                if too_large:
                    # A body without Content-Length ran over the limit while the app read it. What the
                    # app answers then depends on where it was reading (FastAPI's JSON parsing turns
                    # any error into a 400); the answer is 413, whoever noticed.
                    replaced = True
                    status = 413
                    await _send_error(send, 413, "too_large", message_413)
                    return
                status = message["status"]
                response["stream"] = any(name == b"content-type" and value.startswith(b"text/event-stream")
                                         for name, value in message.get("headers", ()))
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                response["ended"] = True
            await send(message)

        task = asyncio.current_task()
        tracked = task is not None and scope.get("path", "").startswith(TRACKED_PREFIXES)
        if tracked:
            assert task is not None
            self.drain.enter(task, waited=scope.get("method") != "GET")
        try:
            await self.app(scope, limited_receive, guarded_send)
        except TooLargeError:
            if not too_large or response["started"]:
                raise
            status = 413
            await _send_error(send, 413, "too_large", message_413)
        except _TooSlow:
            if response["started"]:
                raise
            status = 408
            await _send_error(send, 408, "request_timeout", message_408)
        except asyncio.CancelledError:
            if not tracked or task is None or not self.drain.was_stopped(task):
                raise  # not the drain's: a client disconnect, or the server going down the hard way
            task.uncancel()  # the drain's: answer instead of vanishing
            await answer_stopped(guarded_send, response)
        finally:
            if tracked and task is not None:
                self.drain.leave(task)
            self._record(scope, status, started)

    def _record(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        label = method if method in KNOWN_METHODS else "other"
        self.metrics.requests.labels(label, template, str(status)).inc()
        self.metrics.request_seconds.labels(label, template).observe(time.perf_counter() - started)
        state: Any = scope.get("state") or {}
        log_request(method, scope.get("path", ""), status, started, state.get("principal"))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_error(send: Send, status: int, error_type: str, message: str) -> None:
    body = json.dumps({"error": {"type": error_type, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
