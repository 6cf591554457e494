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
server out of descriptors). Flow
control is the sockets' own: a direction reads only while it holds nothing unsent, so a destination that
stops reading stops the source's being read. An idle timer ends the connection after ``idle`` seconds
without a byte either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
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
        self.pipe: tuple[int, int] | None = None  # made at the first splice: most requests send no body
        self.in_pipe = 0
        self.eof = False
        self._reading = self._writing = False

    @property
    def pending(self) -> bool:
        return bool(self.buffer) or self.in_pipe > 0

    def readable(self) -> None:
        relay = self.relay
        if relay.done:
            return
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
            return
        except OSError as exc:
            relay.ended(self.outbound, exc)
            return
        if size == 0:
            self.eof = True
        else:
            if not relay.passed(self.outbound, size):
                return  # past the cap: the relay is done, these bytes are never sent
            if self.splicing:
                self.in_pipe += size
            else:
                self.buffer += relay.seen(self.outbound, data)
        self.flush()

    def flush(self) -> None:
        relay = self.relay
        if relay.done:
            return
        try:
            while self.buffer:
                del self.buffer[:self.dst.send(self.buffer)]
            while self.in_pipe:
                assert self.pipe is not None
                self.in_pipe -= os.splice(self.pipe[0], self.dst.fileno(), self.in_pipe, flags=_SPLICE_FLAGS)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            relay.ended(self.outbound, exc)
            return
        if self.eof and not self.pending:
            relay.ended(self.outbound, None)
        self.update()

    def update(self) -> None:
        """Watch the source while there is nothing unsent, the destination while there is."""
        loop = self.relay.loop
        live = not self.relay.done and not (self.eof and not self.pending)
        read, write = live and not self.eof and not self.pending, live and self.pending
        if read != self._reading:
            if read:
                loop.add_reader(self.src.fileno(), self.readable)
            else:
                loop.remove_reader(self.src.fileno())
            self._reading = read
        if write != self._writing:
            if write:
                loop.add_writer(self.dst.fileno(), self.flush)
            else:
                loop.remove_writer(self.dst.fileno())
            self._writing = write

    def close(self) -> None:
        if self._reading:
            self.relay.loop.remove_reader(self.src.fileno())
        if self._writing:
            self.relay.loop.remove_writer(self.dst.fileno())
        self._reading = self._writing = False
        if self.pipe is not None:
            _release(self.pipe, self.in_pipe)
            self.pipe = None


class Relay:
    """Relays between ``client`` (the sandbox) and ``upstream`` until the destination is done with it."""

    def __init__(self, client: socket.socket, upstream: socket.socket, record: NetworkConnection, *,
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
        try:
            self._out.buffer += first
            if client_early and self.passed(True, len(client_early)):
                self._out.buffer += client_early
            if self._out.buffer:
                self._out.flush()
            self._out.update()
            self._in.update()
            await self._done
        finally:
            timer.cancel()
            self._out.close()
            self._in.close()

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
