"""Moving a proxied connection's bytes both ways once its head is checked: ``splice`` through a pipe.

The proxy reads and checks the request head itself; what follows (a request body, a response, a TLS tunnel)
is bytes it only counts. A ``Relay`` moves them between the two raw sockets with ``os.splice``: from the
source socket into a pipe, from the pipe into the other socket, so the kernel moves page references and the
proxy's Python runs once per splice (up to a pipe's worth, 1 MiB) rather than copying every byte into a
``bytes`` and out again. Each splice returns how many bytes it moved, so the run's byte cap and the
connection's record stay exact: a splice that takes the run past its cap is counted, and its bytes stay in
the pipe (never sent), as a chunk past the cap was never sent before.

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
import os
import select
import socket
import sys
import termios
import time
from collections.abc import Callable

from .._models import NetworkConnection

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
        if self.splicing and self.pipe is None:
            try:
                self.pipe = _pipe()
            except OSError:  # no descriptors left for a pipe: this direction copies, as it would without splice
                self.splicing = False
        data = b""
        try:
            if self.splicing:
                assert self.pipe is not None
                size = os.splice(self.src.fileno(), self.pipe[1], PIPE_SIZE, flags=_SPLICE_FLAGS)
            else:
                data = self.src.recv(self.chunk)
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
        elif self.splicing:
            self.in_pipe += size
        else:
            self.buffer += relay.seen(self.outbound, data)
        return True

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
            self.relay.ended(self.outbound, exc)
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
                 on_response: Callable[[bytes], None] | None = None) -> None:
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
        """The destination ended its side cleanly (an EOF), with no cap or timeout in the way."""
        self._out = _Direction(self, client, upstream, outbound=True, splicing=True)
        self._in = _Direction(self, upstream, client, outbound=False,
                              splicing=rewrite_response is None and on_response is None)
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
        self._out.pump()
        self._in.pump()

    def _upstream_event(self, mask: int) -> None:
        if mask & _READ_EVENTS:
            self._in.can_read = True
        if mask & _WRITE_EVENTS:
            self._out.can_write = True
        self._in.pump()
        self._out.pump()

    def _check_idle(self) -> None:
        if self.done:
            return
        quiet = time.monotonic() - self._last
        if quiet >= self._idle:
            self._finish(f"idle for {self._idle:g} s")
        else:
            self.loop.call_later(self._idle - quiet, self._check_idle)

    def passed(self, outbound: bool, size: int) -> bool:
        """Counts ``size`` bytes read from one side; False (and the relay done) once they pass the run's cap."""
        self._last = time.monotonic()
        if not self._count(size):
            self._finish(self._cap_reason)
            return False
        if outbound:
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
            data, self._rewrite = self._rewrite(bytes(self._head[:end + 4])) + bytes(self._head[end + 4:]), None
            self._head = bytearray()
            if self._on_response is None:
                self._in.splicing, self._in.chunk = CAN_SPLICE, COPY_CHUNK  # the rest is only counted
        if self._on_response is not None:
            self._on_response(data)
        return data

    def ended(self, outbound: bool, error: Exception | None) -> None:
        if self.done:
            return
        if outbound and error is None:
            # The sandbox finished sending (half-closed), and all it sent is passed on: pass the EOF on too;
            # the destination may still answer.
            with contextlib.suppress(OSError):
                self._upstream.shutdown(socket.SHUT_WR)
            return
        if not outbound and error is None:
            self.completed = self._rewrite is None
        self._finish(None)

    def _finish(self, reason: str | None) -> None:
        if reason is not None and self.record.reason is None:
            self.record.reason = reason
        if not self.done:
            self._done.set_result(None)
