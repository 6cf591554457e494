"""HTTP/1.1 for the server: httptools (llhttp, in C) with h11 behind it, and bounds on slow clients.

uvicorn's httptools protocol parses a request in C; its h11 protocol does it in Python and
costs a request about 0.4 ms more CPU here (benchmarks/README.md). The contract holds on both:

- A request that is not HTTP/1.1 gets the contract's error body (``400 invalid_request``), not
  uvicorn's plain-text one.
- llhttp knows a fixed list of methods and refuses any other token, where HTTP allows any (the
  app answers a made-up method with ``405``). A connection whose next request starts with a
  method llhttp does not know is handed to h11 for the rest of its life, so the app sees it.
- Headers are capped at ``MAX_HEADER_BYTES`` (h11's bound on an unfinished request is the same
  16 KiB); llhttp itself would take headers without end.

A response whose length is known leaves in one write, its head with (the first part of) its body
(``_OneWrite``): uvicorn writes the head as soon as the app starts the response, and then the body,
two sends on the socket for every answer; the client is woken for the head, reads it, and sleeps
again until the body comes (about 0.2 ms a round trip on loopback here, benchmarks/README.md).

uvicorn times out a connection only while it is idle between requests (keep-alive): a client
that sends its headers a byte at a time (slowloris) holds its connection, and a file
descriptor, for as long as it likes. Here every request's headers must be complete within
``read_timeout`` seconds of the connection opening (or of the previous response), or the
connection is closed. The body is bounded the same way by ``RequestGuard``.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import httptools
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

MAX_HEADER_BYTES = 16 * 1024
"""The request line and headers together, at most (a larger request is a 400)."""
COMMON_METHODS = frozenset({b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH"})
INVALID_REQUEST = "the request is not valid HTTP/1.1"


class _HeadersDeadline:
    """A request's headers must be complete within ``read_timeout`` seconds of ``_arm``, or the connection closes."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    read_timeout: float
    _headers_deadline: asyncio.TimerHandle | None

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


class BoundedH11Protocol(_HeadersDeadline, H11Protocol):
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

    def send_400_response(self, msg: str) -> None:
        self.transport.write(_invalid_request_answer())
        self.transport.close()


class _HeadersTooLarge(Exception):
    pass


class BoundedHttpToolsProtocol(_HeadersDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol with the contract's 400, h11 for unknown methods, a header cap and deadline."""

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self._headers_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._in_message = False  # between a request's first byte and its end

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._in_message and self._idle() and _unknown_method(data):
            self._hand_over_to_h11(data)
            return
        super().data_received(data)  # a parse error, or headers over the cap: send_400_response

    # Parser callbacks
    def on_message_begin(self) -> None:
        self._in_message = True
        self._header_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()  # a request's headers are in
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not before:  # a new request's cycle (not an upgrade)
            self.cycle.transport = _OneWrite(self.transport, self.cycle)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self._in_message = False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # the next request's headers are in already: no deadline for them
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._arm()

    def send_400_response(self, msg: str) -> None:
        self.transport.write(_invalid_request_answer())
        self.transport.close()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _HeadersTooLarge  # httptools raises HttpParserCallbackError from feed_data: a 400

    def _idle(self) -> bool:
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _hand_over_to_h11(self, data: bytes) -> None:
        """The rest of this connection is h11's, starting with ``data``."""
        self._disarm()
        self._unset_keepalive_if_required()
        self.connections.discard(self)
        h11 = BoundedH11Protocol(config=self.config, server_state=self.server_state, app_state=self.app_state,
                                 _loop=self.loop, read_timeout=self.read_timeout)
        self.transport.set_protocol(h11)
        h11.connection_made(self.transport)
        h11.data_received(data)


class _OneWrite:
    """One response's view of the connection: a head with a ``Content-Length`` is held until the body's first
    write (which always follows it: uvicorn writes even an empty body), and goes out with it.

    Only such a head: a chunked response (a stream) may wait long for its first chunk, and its head must
    not wait with it; a ``HEAD`` request's response has no body write; an interim ``100 Continue`` is
    written before the response starts. A response that ends in a close instead (an error) gets its
    head then. (A response of known length whose app waits before its body has its head wait too:
    sandlot's routes send both at once; its streams are chunked.)
    """

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif not self._head_seen and self._cycle.response_started:  # this write is the head
            self._head_seen = True
            if self._cycle.chunked_encoding is False and self._cycle.scope["method"] != "HEAD":
                self._head = data
                return
        self._transport.write(data)

    def close(self) -> None:
        if self._head is not None:
            self._transport.write(self._head)
            self._head = None
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _unknown_method(data: bytes) -> bool:
    """Whether ``data``, the start of a request, names a method llhttp would refuse."""
    start = data.lstrip(b"\r\n")
    method, space, _ = start.partition(b" ")
    if not space or method in COMMON_METHODS:
        return False  # no whole method yet (llhttp decides as it reads), or one it knows
    try:
        httptools.HttpRequestParser(_NoCallbacks()).feed_data(method + b" / HTTP/1.1\r\n\r\n")
    except httptools.HttpParserInvalidMethodError:
        return True
    except httptools.HttpParserError:
        return False
    return False


class _NoCallbacks:
    pass


@functools.cache
def _invalid_request_answer() -> bytes:
    body = json.dumps({"error": {"type": "invalid_request", "message": INVALID_REQUEST}}).encode()
    return (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


def bounded_http(read_timeout: float) -> Any:
    """What ``uvicorn.Config(http=...)`` takes: a factory for the server's protocol."""
    return functools.partial(BoundedHttpToolsProtocol, read_timeout=read_timeout)
