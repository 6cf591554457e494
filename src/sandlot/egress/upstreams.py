"""Idle upstream connections one sandbox's proxy keeps for that sandbox's next request to the same destination.

A plain-HTTP request costs the proxy a second connection: the upstream handshake, and at the destination an
accept (a thread or a task, for many servers) before it even reads the request. A forward proxy keeps that
connection open after a response whose end it could see (``framing``) and sends the sandbox's next request to
the same host and port on it, as browsers and proxies do; the sandbox's own connection to the proxy is still
one request each.

Kept per ``SandboxProxy``, so per sandbox: a connection never carries two tenants' requests, and it goes with
its sandbox. Only the destination the policy allowed, for the request that asked: the pool is looked up after
the policy check, never before. A kept connection is checked before it is used (the destination may have
closed it, or sent bytes nobody asked for: either way it is dropped), and closed after ``IDLE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import OrderedDict

IDLE_SECONDS = 4.0
"""How long a connection waits for the sandbox's next request: under the shortest keep-alive timeout common servers
default to (Apache's 5 s; nginx's is 75 s), so the proxy rarely sends a request on a connection the destination is
closing (and when it does, the request is sent again on a new one: ``SandboxProxy``)."""
PER_DESTINATION = 4
"""Idle connections kept to one host and port: a sandbox's parallel downloads from one index reuse theirs."""
TOTAL = 16
"""Idle connections kept by one proxy in all (each is a descriptor in the server)."""


class Upstreams:
    """The idle connections of one proxy, by (host, port), oldest first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._idle: OrderedDict[tuple[str, int, int], tuple[socket.socket, float]] = OrderedDict()
        self._serial = 0
        self._sweep: asyncio.TimerHandle | None = None
        self.reused = 0
        """Requests sent on a kept connection (tests and benchmarks read it)."""

    def __repr__(self) -> str:
        return f"<Upstreams idle={len(self._idle)} reused={self.reused}>"

    def take(self, host: str, port: int) -> socket.socket | None:
        """A kept connection to ``host:port`` that is still open and quiet, or None: the newest first (the oldest is
        the nearest to the destination's own idle timeout)."""
        for key in reversed([key for key in self._idle if key[:2] == (host, port)]):
            sock, _ = self._idle.pop(key)
            if _quiet(sock):
                self.reused += 1
                return sock
            sock.close()
        return None

    def give(self, host: str, port: int, sock: socket.socket) -> None:
        """Keeps ``sock`` (a connection whose last response was read to its end) for the next request."""
        if not _quiet(sock):
            sock.close()
            return
        same = [key for key in self._idle if key[:2] == (host, port)]
        if len(same) >= PER_DESTINATION:
            self._idle.pop(same[0])[0].close()  # the oldest goes
        while len(self._idle) >= TOTAL:
            self._idle.popitem(last=False)[1][0].close()
        self._serial += 1
        self._idle[(host, port, self._serial)] = (sock, time.monotonic())
        if self._sweep is None:
            self._sweep = self._loop.call_later(IDLE_SECONDS, self._close_idle)

    def _close_idle(self) -> None:
        self._sweep = None
        now = time.monotonic()
        for key, (sock, since) in list(self._idle.items()):
            if now - since >= IDLE_SECONDS:
                del self._idle[key]
                sock.close()
        if self._idle:
            oldest = min(since for _, since in self._idle.values())
            self._sweep = self._loop.call_later(max(0.05, oldest + IDLE_SECONDS - now), self._close_idle)

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for sock, _ in self._idle.values():
            sock.close()
        self._idle.clear()


def _quiet(sock: socket.socket) -> bool:
    """Open, and with nothing to read: a byte or an EOF waiting on an idle connection means it cannot carry a new
    request (the destination closed it, or sent what no request asked for)."""
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False
    return False


def quick_ack(sock: socket.socket) -> None:
    """ACK what arrives at once, for the next few segments: on a kept connection the kernel delays ACKs, and a
    destination that writes its response head and body in two sends (Python's ``http.server``) would wait for
    that ACK (Nagle's algorithm) for 40 ms. A fresh connection starts in this mode anyway."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
