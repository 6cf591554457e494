"""HTTP/1.1 on h11, with a bound on how long a client may take to send a request.

uvicorn's h11 protocol times out a connection only while it is idle between
requests (keep-alive): a client that sends its headers a byte at a time
(slowloris) holds its connection, and a file descriptor, for as long as it
likes. Here every request's headers must be complete within ``read_timeout``
seconds of the connection opening (or of the previous response), or the
connection is closed. The body is bounded the same way by ``RequestGuard``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol; a request's headers must arrive within ``read_timeout`` seconds."""

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self._headers_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not None and self.cycle is not before:
            self._disarm()  # a request's headers are in

    def on_response_complete(self) -> None:
        self._arm()  # before: a pipelined request may start (and disarm) inside
        super().on_response_complete()

    def _arm(self) -> None:
        self._disarm()
        self._headers_deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._headers_deadline is not None:
            self._headers_deadline.cancel()
            self._headers_deadline = None

    def _too_slow(self) -> None:
        self._headers_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def bounded_h11(read_timeout: float) -> Any:
    """What ``uvicorn.Config(http=...)`` takes: a factory for the bounded protocol."""
    return functools.partial(BoundedH11Protocol, read_timeout=read_timeout)
