"""The host-side egress proxy of one sandbox: plain HTTP (absolute-URI requests) and HTTPS (CONNECT).

Everything read from the sandbox is hostile: the request head is size-capped and parsed strictly, the
destination is checked against the run's ``Policy`` before any lookup, names are resolved here on the host
and every address checked again, and a CONNECT tunnel to a name must open with a TLS ClientHello whose SNI
is that name (an allowed name cannot front for another host on the same address). Each run has caps on
connections and bytes, and an idle connection is closed. One request per plain-HTTP connection from the
sandbox: the response goes back with ``Connection: close`` and the connection ends with it. Upstream, a
bodiless GET or HEAD goes on a connection kept from the sandbox's last request to the same destination when
there is one (``upstreams``), and its connection is kept in turn when the response's head said where it ends
(``framing``); every other request goes with ``Connection: close``, its response ending at the destination's EOF.

The proxy works on raw non-blocking sockets (no asyncio streams or transports): it reads the head itself,
and once the destination is checked hands both sockets to a ``Relay``, which splices the rest between them
in the kernel (``relay``: the proxy's cost per byte was its copies, and per connection its stream objects).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import select
import socket
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .._models import NetworkConnection
from . import tls
from .credentials import InjectedHeader, headers_for
from .framing import response_framing
from .policy import Policy, parse_address
from .relay import Poller, Relay
from .settings import EgressSettings
from .upstreams import Upstreams, quick_ack
from .wheels import WheelCache, WheelTee

log = logging.getLogger("sandlot.egress")

PROXY_PORT = 3128
"""Where the proxy listens inside every sandbox's own network namespace (each has its own loopback)."""
MAX_HEAD = 64 * 1024
CHUNK = 256 * 1024
READ_CHUNK = 64 * 1024
"""What one read of a request head asks for (a head is at most ``MAX_HEAD``)."""
ACCEPTS_PER_TURN = 100
"""Connections accepted at one wake of the listener, at most (asyncio's servers take a backlog's worth)."""
HOP_BY_HOP = frozenset({"proxy-connection", "proxy-authorization", "connection", "keep-alive", "te", "upgrade"})


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class RunAccount:
    """What one run did through the proxy; the caps hold against it."""

    connections: list[NetworkConnection] = field(default_factory=list)
    bytes: int = 0
    refused_past_cap: int = 0
    """Connections refused after the one that reached ``max_connections`` (that one is in ``connections``)."""


class SandboxProxy:
    """Serves one sandbox's listening socket (``netns.listen_in``) under ``policy``."""

    def __init__(self, policy: Policy, settings: EgressSettings, headers: Sequence[InjectedHeader] = (),
                 wheel_cache: WheelCache | None = None,
                 on_connection: Callable[[NetworkConnection], None] | None = None) -> None:
        self.policy = policy
        self.settings = settings
        self.headers = tuple(headers)
        self.wheel_cache = wheel_cache
        self.on_connection = on_connection
        self.account = RunAccount()
        self._listener: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._poller: Poller | None = None
        self.upstreams: Upstreams | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<SandboxProxy connections={len(self.account.connections)} bytes={self.account.bytes}>"

    async def serve(self, listener: socket.socket) -> None:
        """Serve ``listener`` (non-blocking, listening); it is the proxy's from now on (``close`` closes it)."""
        # A connection is handed to the proxy once its first bytes (a request head) have arrived, or after a
        # second of silence: a proxy's client always speaks first, and being woken by the handshake meant a turn
        # of the loop and a context switch more on every connection, between the sandbox's connect and its head
        # (often taking the CPU from the client as it wrote the head). A silent connection waits in the kernel
        # meanwhile, not in the server; once handed over, it is capped and timed out as any other.
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
        self._listener = listener
        self._loop = asyncio.get_running_loop()
        self._poller = Poller(self._loop)
        self.upstreams = Upstreams(self._loop)
        self._loop.add_reader(listener.fileno(), self._accept)

    def _accept(self) -> None:
        """Accepts what the listener has queued (up to a backlog a turn), from a reader kept for its life: an
        accept per wait (``sock_accept``) would register the listener with the loop and drop it every time."""
        listener = self._listener
        assert listener is not None and self._loop is not None
        for _ in range(ACCEPTS_PER_TURN):
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                # Out of descriptors (EMFILE, ENFILE) or memory, or anything else: the queue waits in the kernel,
                # and the sandbox keeps its proxy (asyncio's own servers pause and go on too).
                log.warning("sandlot: egress proxy cannot accept (%s); retrying in 1 s",
                            exc.strerror or errno.errorcode.get(exc.errno or 0, exc))
                self._loop.remove_reader(listener.fileno())
                self._retry = self._loop.call_later(1.0, self._loop.add_reader, listener.fileno(), self._accept)
                return
            if len(self._tasks) >= self.settings.max_connections:
                # Open connections are capped from their accept, not only once a head names a destination: a
                # sandbox's silent connections would otherwise cost the server a descriptor and a task each,
                # as many as its processes can open, until the server could accept nothing.
                conn.close()
                continue
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio's transports do
            task = self._loop.create_task(self._on_client(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def take_records(self) -> list[NetworkConnection]:
        """The connections since the last call, and a fresh account (a session's next cell has its own caps)."""
        account, self.account = self.account, RunAccount()
        return account.connections

    async def close(self) -> list[NetworkConnection]:
        """Stop listening, end every connection; returns what was not taken yet."""
        if self._listener is not None and self._loop is not None:
            self._loop.remove_reader(self._listener.fileno())
            if self._retry is not None:
                self._retry.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if self._poller is not None:
            self._poller.close()
            self._poller = None
        if self.upstreams is not None:
            self.upstreams.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        return self.take_records()

    async def _on_client(self, conn: socket.socket) -> None:
        try:
            await self._serve_one(_Client(conn, self.settings.idle_timeout))
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # close() ends the connection: this is its task's top
        finally:
            conn.close()

    async def _serve_one(self, client: _Client) -> None:
        try:
            # The head has nearly always arrived with the connection (``serve``: TCP_DEFER_ACCEPT): no timer then.
            head = client.arrived_until(b"\r\n\r\n", MAX_HEAD)
            if head is None:
                # asyncio.timeout, not wait_for: no extra task per connection (this is every request's path).
                async with asyncio.timeout(self.settings.idle_timeout):
                    head = await client.readuntil(b"\r\n\r\n", MAX_HEAD)
        except (asyncio.IncompleteReadError, TimeoutError, ValueError):
            return
        account = self.account  # a session cell that ends meanwhile does not move this connection's bytes
        try:
            method, target, version, fields = _parse_head(head)
        except ValueError as exc:
            await _answer(client, 400, str(exc))
            return
        try:
            host, port, path = _destination(method, target)
        except ValueError as exc:
            await _answer(client, 400, str(exc))
            return
        if len(account.connections) > self.settings.max_connections:
            # The connection that reached the cap is recorded (and logged); the ones after it only counted: a
            # loop of short connections would otherwise grow the result, the log and the server's memory by a
            # record each, thousands a second.
            account.refused_past_cap += 1
            await _answer(client, 429, f"the run's limit of {self.settings.max_connections} connections is reached")
            return
        record = NetworkConnection(host=host, port=port, allowed=False, method=method)
        account.connections.append(record)
        try:
            if len(account.connections) > self.settings.max_connections:
                raise Refused(429, f"the run's limit of {self.settings.max_connections} connections is reached")
            if account.bytes >= self.settings.max_bytes:
                raise Refused(429, f"the run's limit of {self.settings.max_bytes} bytes is reached")
            reason = self.policy.check_name(host, port)
            if reason is not None:
                raise Refused(403, reason)
            cached = self.wheel_cache.hit(host, port, path) if self.wheel_cache is not None and method == "GET" else None
            bodiless = method != "CONNECT" and not any(name.lower() in ("content-length", "transfer-encoding")
                                                       for name, _ in fields)
            keep = cached is None and bodiless and self._may_keep(method, version, host, port, path)
            if cached is None:
                kept = self.upstreams.take(host, port) if keep and self.upstreams is not None else None
                upstream: socket.socket | None = kept if kept is not None else await self._connect(host, port)
        except Refused as refused:
            record.reason = refused.reason
            self._note(record)
            await _answer(client, refused.status, refused.reason)
            return
        record.allowed = True
        if cached is not None:  # a wheel the host's cache holds: no connection at all
            record.cached = True
            try:
                await self._answer_file(client, cached, record, account)
            finally:
                self._note(record)
            return
        try:
            tee = None
            first = b""
            if method == "CONNECT":
                await client.send(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                if parse_address(host) is None:
                    hello = await self._client_hello(client, host)
                    if isinstance(hello, str):
                        record.allowed, record.reason = False, hello
                        return
                    record.bytes_sent += len(hello)
                    account.bytes += len(hello)
                    first = hello
            else:
                upstream_head = self._upstream_head(method, path, version, fields, host, port, keep)
                record.bytes_sent += len(upstream_head)
                account.bytes += len(upstream_head)
                first = upstream_head
                if self.wheel_cache is not None and method == "GET":
                    tee = self.wheel_cache.tee(host, port, path)
            assert upstream is not None
            relay = await self._pipe(client, upstream, first, record, account, tee, keep, method, bodiless)
            if kept is not None and relay.upstream_ended and record.bytes_received == 0 and not relay.upstream_spent \
                    and record.reason is None and account.bytes + len(first) <= self.settings.max_bytes:
                # The kept connection was closed by the destination as the request went out (its idle timeout):
                # nothing came back and nothing reached the sandbox, so the request goes again on a new one.
                upstream.close()
                upstream = None
                upstream = await self._connect(host, port)
                record.bytes_sent += len(first)
                account.bytes += len(first)
                relay = await self._pipe(client, upstream, first, record, account, tee, keep, method, bodiless)
            if keep and relay.reusable_upstream and self.upstreams is not None:
                self.upstreams.give(host, port, upstream)
                upstream = None
        except Refused as refused:  # the new connection for a request sent again
            record.reason = refused.reason
            await _answer(client, refused.status, refused.reason)
        finally:
            if upstream is not None:
                upstream.close()
            self._note(record)

    def _may_keep(self, method: str, version: str, host: str, port: int, path: str) -> bool:
        """Whether this (bodiless) request may go on a kept connection, and leave it kept: a GET or HEAD of
        HTTP/1.1, not one the wheel cache reads (that one ends at the destination's EOF)."""
        if method not in ("GET", "HEAD") or version != "HTTP/1.1":
            return False
        return self.wheel_cache is None or not self.wheel_cache.keeps(host, port, path)

    async def _connect(self, host: str, port: int) -> socket.socket:
        """A connection to ``host:port``: names resolved here, each address checked before it is tried."""
        address = parse_address(host)
        if address is not None:
            candidates = [str(address)]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                raise Refused(502, f"{host} cannot be resolved: {exc}") from None
            resolved = list(dict.fromkeys(str(info[4][0]) for info in infos))
            candidates = [a for a in resolved if (ip := parse_address(a)) is not None and self.policy.allows_resolved(ip, port)]
            if not candidates:
                raise Refused(403, f"{host} resolves to {', '.join(resolved)}: not a public address, and no "
                                   "address entry allows it")
        last: Exception | None = None
        for candidate in candidates:
            sock = socket.socket(socket.AF_INET6 if ":" in candidate else socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                await _connected(sock, (candidate, port), self.settings.connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except (OSError, TimeoutError) as exc:
                sock.close()
                last = exc
            except BaseException:
                sock.close()
                raise
        raise Refused(502, f"cannot connect to {host}:{port}: {last}")

    async def _client_hello(self, client: _Client, host: str) -> bytes | str:
        """The tunnel's first TLS record if its SNI is ``host``; else why not."""
        try:
            async with asyncio.timeout(self.settings.idle_timeout):
                header = await client.readexactly(5)
                rest = await client.readexactly(tls.record_length(header) - 5)
            name = tls.server_name(header + rest)
        except tls.NotClientHello as exc:
            return f"a tunnel to {host} must start TLS with its name (SNI): {exc}"
        except (TimeoutError, asyncio.IncompleteReadError):
            return f"a tunnel to {host} never sent its TLS ClientHello"
        if name != host.lower().rstrip("."):
            return f"the TLS server name {name!r} is not the tunnel's host {host!r}"
        return header + rest

    def _upstream_head(self, method: str, path: str, version: str, fields: list[tuple[str, str]],
                       host: str, port: int, keep: bool) -> bytes:
        injected = headers_for(self.headers, host, port)
        # Host is the checked destination's, whatever the sandbox wrote: an allowed address must not be asked
        # for another virtual host on it.
        authority = f"[{host}]" if ":" in host else host
        injected = [("Host", authority if port == 80 else f"{authority}:{port}"), *injected]
        replaced = {name.lower() for name, _ in injected}
        lines = [f"{method} {path} {version}"]
        lines += [f"{name}: {value}" for name, value in fields
                  if name.lower() not in HOP_BY_HOP and name.lower() not in replaced]
        lines += [f"{name}: {value}" for name, value in injected]
        if not keep:  # HTTP/1.1 keeps a connection open unless told: a kept one says nothing
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _pipe(self, client: _Client, upstream: socket.socket, first: bytes, record: NetworkConnection,
                    account: RunAccount, tee: WheelTee | None, keep: bool = False, method: str = "",
                    bodiless: bool = False) -> Relay:
        """Relay the connection's bytes both ways (``relay``) under the run's caps, until it is done; with ``keep``
        until the response's announced end, when it has one. A ``bodiless`` request (no Content-Length, no
        Transfer-Encoding: RFC 9112 says its body is empty) is whole with its head: whatever the sandbox writes
        behind it (a second request, pipelined) would reach the destination without the proxy's checks, so it is
        counted against the run's cap and dropped, never sent on."""
        max_bytes = self.settings.max_bytes

        def count(size: int) -> bool:
            account.bytes += size
            return account.bytes <= max_bytes

        # ``first`` (the rewritten head or the ClientHello, counted already) goes upstream first, then what was
        # read past it (a request body's start).
        early = client.take_buffered()
        if bodiless and early:
            account.bytes += len(early)
            early = b""
        if first:  # sent at once: the destination starts on it while the relay is being set up
            with contextlib.suppress(BlockingIOError, InterruptedError, ConnectionError):
                first = first[upstream.send(first):]  # a kept connection found reset fails in the relay: retried
            if keep:
                quick_ack(upstream)
        assert self._poller is not None
        relay = Relay(client.sock, upstream, record, poller=self._poller, count=count,
                      cap_reason=f"the run's limit of {max_bytes} bytes is reached", idle=self.settings.idle_timeout,
                      rewrite_response=_closing_response_head if record.method != "CONNECT" else None,
                      on_response=tee.feed if tee is not None else None,
                      framing=(lambda head: response_framing(head, method)) if keep else None, request_sent=bodiless)
        try:
            await relay.run(first, early)
        finally:
            if tee is not None:
                if relay.completed and not record.reason:
                    await asyncio.to_thread(tee.finish)
                else:
                    tee.discard()
        return relay

    async def _answer_file(self, client: _Client, path: str, record: NetworkConnection,
                           account: RunAccount) -> None:
        """A ``200`` with the file at ``path`` (a cached wheel), streamed under the run's byte cap and idle timeout.

        Never read whole: a wheel can be a GiB, and a sandbox's connections asking for it at once (not reading
        the answers) would otherwise hold that many copies in the server's memory; nor past ``max_bytes``."""
        max_bytes = self.settings.max_bytes
        f = await asyncio.to_thread(open, path, "rb")
        try:
            size = os.fstat(f.fileno()).st_size
            data = (f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n"
                    "Connection: close\r\n\r\n").encode()
            while data:
                if account.bytes + len(data) > max_bytes:
                    record.reason = f"the run's limit of {max_bytes} bytes is reached"
                    return
                account.bytes += len(data)
                record.bytes_received += len(data)
                await client.send(data)
                data = await asyncio.to_thread(f.read, CHUNK)
        except TimeoutError:
            record.reason = f"idle for {self.settings.idle_timeout:g} s"
        finally:
            f.close()

    def _note(self, record: NetworkConnection) -> None:
        log.info("sandlot: egress %s %s:%d %s (%d bytes out, %d in)%s", record.method, record.host, record.port,
                 "allowed" if record.allowed else "refused", record.bytes_sent, record.bytes_received,
                 f": {record.reason}" if record.reason else "")
        if self.on_connection is not None:
            self.on_connection(record)


def _parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    """A request head, parsed strictly: what goes upstream must mean to the destination what it meant here.

    A destination that ends lines at a bare LF (Python's http.server, nginx and many more) would read a bare
    LF in the request line as the end of it: the sandbox could add header lines before the proxy's Host, or
    end the head early so that the Host, the injected credential and ``Connection: close`` become a body the
    destination stores and hands back. So no CR or LF outside CRLF, no control character anywhere but HTAB
    in a field value, a token as the method, and HTTP/1.0 or 1.1 only."""
    text = head.decode("latin-1")
    lines = text[:-4].split("\r\n")
    if any(_CONTROL.search(line) for line in lines):
        raise ValueError("a control character, or a CR or LF outside CRLF, in the request head")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1] or parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
        raise ValueError("not an HTTP/1.x request line")
    fields = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise ValueError("malformed header line")
        fields.append((name, value.strip(" \t")))
    return parts[0], parts[1], parts[2], fields


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""Every control character but HTAB (CR and LF included: the head was split at CRLF already)."""
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""RFC 9110's token: a method, a field name."""


class _Client:
    """The sandbox's side of one connection: its raw socket, and what was read from it past what was asked."""

    def __init__(self, sock: socket.socket, send_timeout: float) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self._send_timeout = send_timeout
        self._loop = asyncio.get_running_loop()

    async def _fill(self) -> None:
        try:  # what has arrived already is read without waiting (and without registering the socket to wait)
            chunk = self.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            chunk = await self._loop.sock_recv(self.sock, READ_CHUNK)
        if not chunk:
            raise asyncio.IncompleteReadError(bytes(self.buffer), None)
        self.buffer += chunk

    def arrived_until(self, separator: bytes, limit: int) -> bytes | None:
        """``readuntil``'s answer if the bytes that have arrived already hold it (one read, no wait); else None."""
        try:
            chunk = self.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return None
        if not chunk:
            raise asyncio.IncompleteReadError(bytes(self.buffer), None)
        self.buffer += chunk
        end = self.buffer.find(separator)
        if end < 0:
            if len(self.buffer) > limit:
                raise ValueError("too long")
            return None
        if end > limit:
            raise ValueError("too long")
        return self._take(end + len(separator))

    async def readuntil(self, separator: bytes, limit: int) -> bytes:
        """Up to and with ``separator``; ``ValueError`` if it is not within ``limit`` bytes."""
        start = 0
        while (end := self.buffer.find(separator, start)) < 0:
            if len(self.buffer) > limit:
                raise ValueError("too long")
            start = max(0, len(self.buffer) - len(separator) + 1)
            await self._fill()
        if end > limit:
            raise ValueError("too long")
        return self._take(end + len(separator))

    async def readexactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            await self._fill()
        return self._take(size)

    def _take(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def take_buffered(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def send(self, data: bytes) -> None:
        """All of ``data``, or ``TimeoutError`` when the sandbox reads none of it for a send timeout."""
        async with asyncio.timeout(self._send_timeout):
            await self._loop.sock_sendall(self.sock, data)


async def _connected(sock: socket.socket, address: tuple[str, int], timeout: float) -> None:
    """Connects the non-blocking ``sock`` to an address (never a name: names are resolved and checked before).

    Not ``loop.sock_connect``: uvloop's resolves even an address literal in libuv's thread pool, a hop to
    another thread and back (two context switches) on every proxied connection. A destination on the host's
    own network (loopback, and a LAN's nearest hosts) has answered the SYN by the time ``connect`` returns
    (the kernel handles the SYN-ACK as it releases the socket): one ``poll`` without a wait sees that, where the
    loop's writer would cost two ``epoll_ctl``, a timer and a turn of the loop; a far destination costs that one
    call more. ``TimeoutError`` after ``timeout`` seconds."""
    error = sock.connect_ex(address)
    if error in (errno.EINPROGRESS, errno.EAGAIN):
        if not _writable_now(sock):
            async with asyncio.timeout(timeout):
                await _writable(sock)
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, os.strerror(error))


async def _writable(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    writable: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not writable.done():
            writable.set_result(None)

    loop.add_writer(sock.fileno(), ready)
    try:
        await writable
    finally:
        loop.remove_writer(sock.fileno())


def _writable_now(sock: socket.socket) -> bool:
    """Whether ``sock`` is writable (or failed) already, without waiting. ``poll``, not ``select``: a server's
    descriptors go past ``select``'s 1024."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    return bool(poller.poll(0))


def _closing_response_head(head: bytes) -> bytes:
    """A response head with its connection headers replaced by ``Connection: close``."""
    lines = head[:-4].split(b"\r\n")
    kept = [line for line in lines[1:]
            if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive", b"proxy-connection")]
    return b"\r\n".join([lines[0], *kept, b"Connection: close"]) + b"\r\n\r\n"


def _destination(method: str, target: str) -> tuple[str, int, str]:
    """(host, port, origin-form path) of a proxy request."""
    if method == "CONNECT":
        host, sep, port_text = target.rpartition(":")
        if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536 or not host:
            raise ValueError("CONNECT needs host:port")
        return host.strip("[]"), int(port_text), ""
    url = urllib.parse.urlsplit(target)
    if url.scheme != "http" or not url.hostname:
        raise ValueError("a proxy request needs an absolute http:// URL (HTTPS goes by CONNECT)")
    try:
        port = url.port or 80
    except ValueError:
        raise ValueError("bad port") from None
    origin_form = url.path or "/"
    if url.query:
        origin_form += "?" + url.query
    return url.hostname, port, origin_form


async def _answer(client: _Client, status: int, reason: str) -> None:
    body = f"sandlot egress: {reason}\n".encode()
    phrase = {400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests", 502: "Bad Gateway"}.get(status, "Error")
    with contextlib.suppress(ConnectionError, OSError, TimeoutError):
        await client.send(f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                          "Connection: close\r\n\r\n".encode() + body)
