"""Copying a proxied connection's bytes both ways, as protocol callbacks rather than coroutines.

Once the proxy has read and checked the request head, the two sockets are handed to a ``Relay``: each side's
transport gets a small protocol whose ``data_received`` writes straight to the other side (no stream buffer,
no task woken per chunk: the copy costs a callback), and flow control is the transports' own (a side whose
write buffer fills stops the other side's reading). The caps and records of the run are kept here; an idle
timer ends the connection after ``idle`` seconds without a byte either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .._models import NetworkConnection

MAX_HEAD = 64 * 1024


class _Side(asyncio.Protocol):
    """What arrives on one transport (``outbound``: from the sandbox)."""

    def __init__(self, relay: Relay, outbound: bool) -> None:
        self.relay = relay
        self.outbound = outbound

    def data_received(self, data: bytes) -> None:
        self.relay.received(self.outbound, data)

    def eof_received(self) -> bool:
        self.relay.ended(self.outbound, None)
        return True  # keep our half open: the other direction may still be sending

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.ended(self.outbound, exc or ConnectionResetError("closed"))

    def pause_writing(self) -> None:
        self.relay.transport(not self.outbound).pause_reading()

    def resume_writing(self) -> None:
        self.relay.transport(not self.outbound).resume_reading()


class Relay:
    """Relays between ``client`` (the sandbox) and ``upstream`` until the destination is done with it."""

    def __init__(self, client: asyncio.Transport, upstream: asyncio.Transport, record: NetworkConnection, *,
                 count: Callable[[int], bool], cap_reason: str, idle: float, rewrite_response: Callable[[bytes], bytes] | None = None,
                 on_response: Callable[[bytes], None] | None = None) -> None:
        self._client, self._upstream = client, upstream
        self.record = record
        self._count = count
        """Adds bytes to the run's account; False once its cap is passed (then ``cap_reason``)."""
        self._cap_reason = cap_reason
        self._idle = idle
        self._rewrite = rewrite_response
        self._head = bytearray()
        self._on_response = on_response
        self._last = time.monotonic()
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.completed = False
        """The destination ended its side cleanly (an EOF), with no cap or timeout in the way."""

    def transport(self, outbound: bool) -> asyncio.Transport:
        return self._client if outbound else self._upstream

    async def run(self, client_early: bytes = b"") -> None:
        for transport, outbound in ((self._client, True), (self._upstream, False)):
            transport.set_protocol(_Side(self, outbound))
            transport.set_write_buffer_limits(high=1 << 20)
            if not transport.is_reading():
                transport.resume_reading()
        if client_early:
            self.received(True, client_early)  # what the head's reader had buffered past the head
        timer = asyncio.get_running_loop().call_later(self._idle, self._check_idle)
        try:
            await self._done
        finally:
            timer.cancel()

    def _check_idle(self) -> None:
        if self._done.done():
            return
        quiet = time.monotonic() - self._last
        if quiet >= self._idle:
            self._finish(f"idle for {self._idle:g} s")
        else:
            asyncio.get_running_loop().call_later(self._idle - quiet, self._check_idle)

    def received(self, outbound: bool, data: bytes) -> None:
        if self._done.done():
            return
        self._last = time.monotonic()
        if not self._count(len(data)):
            self._finish(self._cap_reason)
            return
        if outbound:
            self.record.bytes_sent += len(data)
            self._upstream.write(data)
            return
        self.record.bytes_received += len(data)
        if self._rewrite is not None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > MAX_HEAD:
                    self._finish("the response head is too long")
                return
            data, self._rewrite = self._rewrite(bytes(self._head[:end + 4])) + bytes(self._head[end + 4:]), None
            self._head = bytearray()
        if self._on_response is not None:
            self._on_response(data)
        self._client.write(data)

    def ended(self, outbound: bool, error: Exception | None) -> None:
        if self._done.done():
            return
        if outbound and error is None:
            # The sandbox finished sending (half-closed): pass it on; the destination may still answer.
            if self._upstream.can_write_eof():
                self._upstream.write_eof()
            return
        if not outbound and error is None:
            self.completed = self._rewrite is None
        self._finish(None)

    def _finish(self, reason: str | None) -> None:
        if reason is not None and self.record.reason is None:
            self.record.reason = reason
        if not self._done.done():
            self._done.set_result(None)
