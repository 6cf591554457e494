"""Moving a proxied connection's bytes both ways once its head is checked: ``splice`` through a pipe.

The proxy reads and checks the request head itself; what follows (a request body, a response, a TLS tunnel)
is bytes it only counts. A ``Relay`` moves them between the two raw sockets with ``os.splice``: from the
source socket into a pipe, from the pipe into the other socket, so the kernel moves page references and the
proxy's Python runs once per splice (up to a pipe's worth, 1 MiB) rather than copying every byte into a
``bytes`` and out again. Each splice returns how many bytes it moved, so the run's byte cap and the
connection's record stay exact: a splice that takes the run past its cap is counted, and its bytes stay in
the pipe (never sent), as a chunk past the cap was never sent before.

A response on an upstream connection the proxy keeps (``upstreams``) ends where its head said (``framing``):
the inbound direction reads that many bytes and no more, so the connection is left between two messages. The
request of such a connection was whole with its head: what the sandbox writes after it is read, counted and
dropped, never sent on.

A direction copies through user space instead where the proxy must see the bytes: a plain-HTTP response
until its head is rewritten (``Connection: close``; read in small chunks, so little of the body is copied
with it), and all of a response the wheel cache keeps; so does a connection that cannot have a pipe (the
server out of descriptors). Flow control is the sockets' own: a direction reads only while it holds nothing
unsent, so a destination that stops reading stops the source's being read. The sockets are watched through
one edge-triggered epoll per proxy (``Poller``), not the event loop's readers and writers. An idle timer ends
the connection after ``idle`` seconds without a byte either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import select
import socket
import sys
import termios
import time
from collections.abc import Callable

from .._models import NetworkConnection
from .framing import ChunkedEnd, Framing

log = logging.getLogger("sandlot.egress")

MAX_HEAD = 64 * 1024
COPY_CHUNK = 256 * 1024
HEAD_CHUNK = 4096
"""What one read of a response head asks for: the body that arrives with the head is copied with it."""
PIPE_SIZE = 1 << 20
"""What one splice moves at most: a pipe's capacity, raised from the kernel's 64 KiB (to ``pipe-max-size``'s
default: anyone may)."""
CAN_SPLICE = hasattr(os, "splice")
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_SPLICE_FLAGS = (os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK) if CAN_SPLICE else 0


def _pipe() -> tuple[int, int]:
    """An empty pipe: a spare one, or a new one at ``PIPE_SIZE``."""
    with contextlib.suppress(IndexError):
        return _SPARE_PIPES.pop()
    read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    with contextlib.suppress(OSError):  # a lower pipe-max-size, or the user's pipe pages spent: 64 KiB works too
        fcntl.fcntl(write_end, _F_SETPIPE_SZ, PIPE_SIZE)
    return read_end, write_end


def _release(pipe: tuple[int, int], in_pipe: int) -> None:
    """Keeps ``pipe`` as a spare if it is empty (asked of the kernel too: no byte of one connection may reach
    another's socket); closes it otherwise. Making, sizing and closing a pipe cost more than the rest of a small
    request's relay together (a sized pipe's ring is allocated and freed), so a few are kept."""
    if in_pipe == 0 and len(_SPARE_PIPES) < SPARE_PIPES:
        with contextlib.suppress(OSError):
            if int.from_bytes(fcntl.ioctl(pipe[0], termios.FIONREAD, bytes(4)), sys.byteorder) == 0:
                _SPARE_PIPES.append(pipe)
                return
    for fd in pipe:
        os.close(fd)


SPARE_PIPES = 16
"""How many empty pipes are kept for the next connections (two descriptors each; shared by every sandbox's
proxy in the process, as the pipes hold nothing)."""
_SPARE_PIPES: list[tuple[int, int]] = []


class Poller:
    """One epoll for every relay of a proxy, watched by the event loop as one descriptor for the proxy's life.

    A relay's sockets are registered here once each, edge-triggered, for reading and writing both, and each
    direction remembers whether its source may have more and its destination room (until a call says it would
    block). The loop's own readers would register a socket and drop it each time a direction stops reading or
    starts waiting to write: with uvloop a poll handle made and closed, ~14 us and several syscalls a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._epoll = select.epoll()
        self._handlers: dict[int, Callable[[int], None]] = {}
        loop.add_reader(self._epoll.fileno(), self._dispatch)

    def watch(self, fd: int, handler: Callable[[int], None]) -> None:
        self._epoll.register(fd, select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET)
        self._handlers[fd] = handler

    def unwatch(self, fd: int) -> None:
        """Before ``fd`` is closed (a descriptor number is used again by the next socket)."""
        if self._handlers.pop(fd, None) is not None:
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)

    def _dispatch(self) -> None:
        try:
            events = self._epoll.poll(0)
        except InterruptedError:
            return
        for fd, mask in events:
            handler = self._handlers.get(fd)
            if handler is not None:
                handler(mask)

    def close(self) -> None:
        if not self._epoll.closed:
            self._loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
        self._handlers.clear()


_READ_EVENTS = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_WRITE_EVENTS = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
PUMPS_PER_TURN = 16
"""Reads and writes one direction makes before it lets the loop run something else (and goes on after)."""


class _Direction:
    """The bytes from ``src`` to ``dst`` (``outbound``: from the sandbox)."""

    def __init__(self, relay: Relay, src: socket.socket, dst: socket.socket, outbound: bool, splicing: bool) -> None:
        self.relay = relay
        self.src, self.dst = src, dst
        self.outbound = outbound
        self.splicing = splicing and CAN_SPLICE
        self.chunk = COPY_CHUNK
        """What one copying read asks for."""
        self.buffer = bytearray()
        """Copied bytes not sent yet (always ahead of the pipe's: a direction copies first, then splices)."""
        self.pipe: tuple[int, int] | None = None  # taken at the first splice: most requests send no body
        self.in_pipe = 0
        self.eof = False
        self.can_read = False
        """The source may have bytes (or an EOF): set by the poller's events, cleared when a read would block.
        Registering a socket reports what is ready already, so this starts False."""
        self.can_write = True
        """The destination may take bytes: cleared when a write would block, set by the poller's events."""
        self.forwards = True
        """False: what the source sends is read (counted, and its EOF seen) but not sent on. A bodiless request on
        a kept connection is whole with its head: what the sandbox writes behind it would reach the destination
        as a request the proxy never checked."""
        self.remaining: int | None = None
        """Bytes still to read before the source's message is through (a response of known length on a kept
        connection: ``framing``); None: until the source's EOF."""
        self._ended = False

    @property
    def pending(self) -> bool:
        return bool(self.buffer) or self.in_pipe > 0

    def pump(self) -> None:
        """Moves what it can: sends what is unsent, else reads; stops where the kernel would block."""
        relay = self.relay
        for _ in range(PUMPS_PER_TURN):
            if relay.done or self._ended:
                return
            if self.pending:
                if not self.can_write or not self._send():
                    return
            elif self.eof:
                self._ended = True
                relay.ended(self.outbound, None)
                return
            elif not self.can_read or not self._receive():
                return
        relay.loop.call_soon(self.pump)  # a source and a destination that keep up: the loop gets its turn

    def _receive(self) -> bool:
        relay = self.relay
        if self.splicing and self.pipe is None and self.forwards:
            try:
                self.pipe = _pipe()
            except OSError:  # no descriptors left for a pipe: this direction copies, as it would without splice
                self.splicing = False
        data = b""
        try:
            if self.splicing and self.forwards:
                assert self.pipe is not None
                want = PIPE_SIZE if self.remaining is None else min(PIPE_SIZE, self.remaining)
                size = os.splice(self.src.fileno(), self.pipe[1], want, flags=_SPLICE_FLAGS)
            else:
                data = self.src.recv(self.chunk if self.remaining is None else min(self.chunk, self.remaining))
                size = len(data)
        except (BlockingIOError, InterruptedError):
            self.can_read = False
            return False
        except OSError as exc:
            relay.ended(self.outbound, exc)
            return False
        if size == 0:
            self.eof = True
        elif not relay.passed(self.outbound, size):
            return False  # past the cap: the relay is done, these bytes are never sent
        elif not self.forwards:
            pass
        elif self.splicing:
            self.in_pipe += size
            self._through(size)
        else:
            self._through(size, counted_by_head=relay.awaiting_head(self.outbound))
            self.buffer += relay.seen(self.outbound, data)
        return True

    def _through(self, size: int, counted_by_head: bool = False) -> None:
        """``size`` more bytes of a message of known length are read (a head's bytes are counted by ``seen``)."""
        if self.remaining is not None and not counted_by_head:
            self.remaining -= size
            if self.remaining <= 0:
                self.eof = True
                self.relay.message_ended = True

    def _send(self) -> bool:
        try:
            if self.buffer:
                del self.buffer[:self.dst.send(self.buffer)]
            else:
                assert self.pipe is not None
                self.in_pipe -= os.splice(self.pipe[0], self.dst.fileno(), self.in_pipe, flags=_SPLICE_FLAGS)
        except (BlockingIOError, InterruptedError):
            self.can_write = False
            return False
        except OSError as exc:
            self.relay.ended(not self.outbound, exc)  # the side that failed is the one written to
            return False
        return True

    def close(self) -> None:
        if self.pipe is not None:
            _release(self.pipe, self.in_pipe)
            self.pipe = None


class Relay:
    """Relays between ``client`` (the sandbox) and ``upstream`` until the destination is done with it."""

    def __init__(self, client: socket.socket, upstream: socket.socket, record: NetworkConnection, *, poller: Poller,
                 count: Callable[[int], bool], cap_reason: str, idle: float, rewrite_response: Callable[[bytes], bytes] | None = None,
                 on_response: Callable[[bytes], None] | None = None,
                 framing: Callable[[bytes], Framing] | None = None, request_sent: bool = False) -> None:
        self._client, self._upstream = client, upstream
        self._poller = poller
        self.record = record
        self._count = count
        """Adds bytes to the run's account; False once its cap is passed (then ``cap_reason``)."""
        self._cap_reason = cap_reason
        self._idle = idle
        self._rewrite = rewrite_response
        self._head = bytearray()
        self._on_response = on_response
        self._last = time.monotonic()
        self.loop = asyncio.get_running_loop()
        self._done: asyncio.Future[None] = self.loop.create_future()
        self.completed = False
        """The destination ended its side cleanly (an EOF, or the end its response's head announced), with no cap
        or timeout in the way."""
        self._framing = framing
        """Reads a response head's framing (``rewrite_response`` only): with a length, the relay ends when that
        much body is through, and the upstream connection may carry another request."""
        self.framed: Framing | None = None
        self.message_ended = False
        """The response's announced end was reached: the destination said no more, without an EOF."""
        self.upstream_spent = False
        """The upstream connection cannot carry another request: the sandbox sent bytes after its head (a body,
        or a second request), or the connection was half-closed."""
        self._sandbox_done = False
        """The sandbox sent its EOF."""
        self._chunked: ChunkedEnd | None = None
        """The end of a chunked response being looked for (a kept connection's)."""
        self.upstream_ended = False
        """The destination's side ended the relay (its EOF or an error), not the sandbox's or a cap."""
        self._out = _Direction(self, client, upstream, outbound=True, splicing=True)
        self._in = _Direction(self, upstream, client, outbound=False,
                              splicing=rewrite_response is None and on_response is None)
        self._out.forwards = not request_sent
        if rewrite_response is not None and on_response is None:
            self._in.chunk = HEAD_CHUNK  # only the head is copied: the body is spliced once it is through

    @property
    def done(self) -> bool:
        return self._done.done()

    async def run(self, first: bytes = b"", client_early: bytes = b"") -> None:
        """Relay until done; ``first`` (counted already) and then ``client_early`` (what the proxy read past
        the head: a request body's start) go upstream before anything else from the sandbox."""
        timer = self.loop.call_later(self._idle, self._check_idle)
        watched = []
        try:
            self._out.buffer += first
            if client_early and self.passed(True, len(client_early)):
                self._out.buffer += client_early
            for sock, handler in ((self._client, self._client_event), (self._upstream, self._upstream_event)):
                self._poller.watch(sock.fileno(), handler)
                watched.append(sock.fileno())
            self._out.pump()
            await self._done
        finally:
            timer.cancel()
            for fd in watched:
                self._poller.unwatch(fd)
            self._out.close()
            self._in.close()

    def _client_event(self, mask: int) -> None:
        if mask & _READ_EVENTS:
            self._out.can_read = True
        if mask & _WRITE_EVENTS:
            self._in.can_write = True
        self._pump(self._out, self._in)

    def _upstream_event(self, mask: int) -> None:
        if mask & _READ_EVENTS:
            self._in.can_read = True
        if mask & _WRITE_EVENTS:
            self._out.can_write = True
        self._pump(self._in, self._out)

    def _pump(self, first: _Direction, second: _Direction) -> None:
        """Both directions, from the poller's dispatch: a fault here ends this connection, not the dispatch (whose
        other events, edge-triggered, would be lost with it)."""
        try:
            first.pump()
            second.pump()
        except Exception:
            log.exception("sandlot: egress relay to %s:%d failed", self.record.host, self.record.port)
            self._finish("the proxy failed on this connection")

    def _check_idle(self) -> None:
        if self.done:
            return
        quiet = time.monotonic() - self._last
        if quiet >= self._idle:
            self._finish(f"idle for {self._idle:g} s")
        else:
            self.loop.call_later(self._idle - quiet, self._check_idle)

    @property
    def reusable_upstream(self) -> bool:
        """The upstream connection is between messages, clean, and the destination keeps it open."""
        return (self.completed and self.message_ended and self.framed is not None and self.framed.reusable
                and not self.upstream_spent and not self._out.pending and self.record.reason is None)

    def awaiting_head(self, outbound: bool) -> bool:
        return not outbound and self._rewrite is not None

    def passed(self, outbound: bool, size: int) -> bool:
        """Counts ``size`` bytes read from one side; False (and the relay done) once they pass the run's cap."""
        self._last = time.monotonic()
        if outbound and self._out.forwards:  # bytes only counted and dropped leave the connection clean
            self.upstream_spent = True
        if not self._count(size):
            self._finish(self._cap_reason)
            return False
        if outbound:
            if self._out.forwards:  # the record says what reached the destination; the cap counts all the same
                self.record.bytes_sent += size
        else:
            self.record.bytes_received += size
        return True

    def seen(self, outbound: bool, data: bytes) -> bytes:
        """What to send of bytes copied through user space: a response's head rewritten once whole."""
        if outbound:
            return data
        if self._rewrite is not None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > MAX_HEAD:
                    self._finish("the response head is too long")
                return b""
            head, body = bytes(self._head[:end + 4]), bytes(self._head[end + 4:])
            self._head = bytearray()
            rewritten, self._rewrite = self._rewrite(head), None
            if self._framing is not None:
                body = self._frame(self._framing(head), body)
            data = rewritten + body
            if self._sandbox_done and self.framed is None:
                self._shut_upstream()  # the sandbox's half-close, held while the head might have kept the connection
            if self._on_response is None:
                self._in.chunk = COPY_CHUNK
                self._in.splicing = CAN_SPLICE and self._chunked is None  # the rest is only counted (or its chunks read)
        elif self._chunked is not None:
            data = self._chunk_through(data)
        if self._on_response is not None:
            self._on_response(data)
        return data

    def _chunk_through(self, data: bytes) -> bytes:
        """What of ``data`` belongs to a chunked body still going by; at its end the message is through."""
        assert self._chunked is not None
        end = self._chunked.feed(data)
        if self._chunked.malformed:
            self.upstream_spent = True
            self._finish("the destination's chunked body is malformed")
            return b""
        if end is None:
            return data
        if end < len(data):
            self.upstream_spent = True  # bytes after the response that no request asked for: not clean
        self._chunked = None
        self._in.eof = True
        self.message_ended = True
        return data[:end]

    def _frame(self, framed: Framing, body: bytes) -> bytes:
        """The response's head is through, with ``body`` (what arrived behind it): from here the inbound direction
        reads what is left of a body of known length and no more, or a chunked body to its end; returns what of
        ``body`` is the response's."""
        if framed.chunked:
            self.framed = framed
            self._chunked = ChunkedEnd()
            return self._chunk_through(body)
        if framed.length is None:
            # Its end is the destination's EOF. The request went without ``Connection: close``, and a half-close
            # now would cut a streamed response short (Node's servers end the socket on one): the relay goes on
            # until the destination closes, or the sandbox does (its half-close is passed on then, as always), or
            # the idle timeout.
            self.upstream_spent = True
            return body
        self.framed = framed
        if len(body) > framed.length:  # more than it announced: the rest is no response's, and the connection unclean
            body = body[:framed.length]
            self.upstream_spent = True
        self._in.remaining = framed.length - len(body)
        if self._in.remaining == 0:
            self._in.eof = True
            self.message_ended = True
        return body

    def _shut_upstream(self) -> None:
        with contextlib.suppress(OSError):
            self._upstream.shutdown(socket.SHUT_WR)
        self.upstream_spent = True

    def ended(self, outbound: bool, error: Exception | None) -> None:
        if self.done:
            return
        if outbound and error is None:
            # The sandbox finished sending (half-closed, or closed): pass the EOF on, as the destination may still
            # answer; except while a request whole with its head awaits the head of a response that may leave the
            # connection kept (then ``seen`` passes it on if the response's end is the destination's EOF after all).
            self._sandbox_done = True
            if self._out.forwards or self._rewrite is None or self._framing is None:
                if self.framed is None:
                    self._shut_upstream()
            return
        if not outbound:
            self.upstream_ended = True
        if not outbound and error is None:
            self.completed = self._rewrite is None
        self._finish(None)

    def _finish(self, reason: str | None) -> None:
        if reason is not None and self.record.reason is None:
            self.record.reason = reason
        if not self.done:
            self._done.set_result(None)
