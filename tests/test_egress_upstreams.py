"""Kept upstream connections (egress/upstreams.py, egress/framing.py), on the proxy's host-port seam.

A bodiless GET or HEAD goes on the connection the sandbox's last request to the same destination left open, when
its response said where it ends; everything else goes with ``Connection: close`` as before. The origin is a raw
keep-alive server in the test's own loop that numbers its connections, so each test sees which request went on
which connection, and exactly what reached the destination.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sandlot.egress import EgressSettings
from sandlot.egress import upstreams as upstreams_module
from sandlot.egress.framing import response_framing
from sandlot.testing.egress import proxy_on_a_port


class KeepAliveOrigin:
    """HTTP/1.1 with keep-alive. ``/n/SIZE``: SIZE bytes; ``/chunked``: a chunked body; ``/extra``: 4 bytes after
    a ``Content-Length: 2``; ``/close``: ``Connection: close``, then closes; ``/slow``: 2 bytes after 0.3 s;
    ``/empty``: a 204; ``/drop``: on a connection's second request or later, closes without answering. A request
    with ``Connection: close`` is its connection's last. ``seen`` holds (connection number, request line) for every
    request read, ``heads`` every head whole."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self.heads: list[bytes] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.closed_by_peer: list[int] = []
        """Connections whose client (the proxy) closed them while they waited for a request."""

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.writers.append(writer)
        served = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_peer.append(number)
                    return
                line = head.split(b"\r\n")[0].decode()
                self.seen.append((number, line))
                self.heads.append(head)
                method, path = line.split(" ")[:2]
                served += 1
                if path == "/drop" and served > 1:
                    return
                if path == "/chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
                elif path == "/extra":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokXX")
                elif path == "/close":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    await writer.drain()
                    return
                elif path == "/slow":
                    await asyncio.sleep(0.3)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                elif path == "/empty":
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                else:
                    size = int(path.rsplit("/", 1)[1]) if path.startswith("/n/") else 2
                    body = b"" if method == "HEAD" else b"x" * size
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                    await writer.drain()
                    await asyncio.sleep(0.005)  # head and body in two sends, as Python's http.server writes them
                    writer.write(body)
                await writer.drain()
                if b"connection: close" in head.lower():
                    return
        except ConnectionError:
            return
        finally:
            writer.close()


async def get(port: int, origin_port: int, path: str, method: str = "GET", after: bytes = b"") -> bytes:
    """One request through the proxy on a connection of its own (as urllib makes one), read to the proxy's EOF;
    ``after`` is written 50 ms behind the head (a second request pipelined late)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} http://127.0.0.1:{origin_port}{path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    if after:
        await asyncio.sleep(0.05)
        writer.write(after)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def through(script: Callable[[int, int, KeepAliveOrigin], Awaitable[Any]],
                  proxies: int = 1) -> tuple[KeepAliveOrigin, list[Any], Any]:
    """Runs ``script(proxy port, origin port, origin)`` and returns the origin, each proxy's records, and what the
    script returned; with ``proxies`` 2 the script gets the second proxy's port as ``origin.other_port``."""
    origin = KeepAliveOrigin()
    origin_port = await origin.start()
    settings = EgressSettings(allow=(f"127.0.0.1:{origin_port}",))
    made = [await proxy_on_a_port(settings) for _ in range(proxies)]
    origin.other_port = made[-1][1]  # type: ignore[attr-defined]
    origin.proxies = [proxy for proxy, _ in made]  # type: ignore[attr-defined]
    try:
        result = await script(made[0][1], origin_port, origin)
    finally:
        records = [await proxy.close() for proxy, _ in made]
        origin.server.close()
    return origin, records, result


def test_a_second_get_to_the_same_destination_goes_on_the_kept_connection(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def script(port: int, origin_port: int, origin: KeepAliveOrigin) -> list[bytes]:
        return [await get(port, origin_port, f"/n/{size}") for size in (1, 300_000, 5)]

    origin, (records,), answers = run(through(script))
    assert [number for number, _ in origin.seen] == [1, 1, 1]
    assert all(b"connection: close" not in head.lower() for head in origin.heads)  # kept: nothing said
    for answer, size in zip(answers, (1, 300_000, 5), strict=True):
        head, _, body = answer.partition(b"\r\n\r\n")
        assert body == b"x" * size and b"Connection: close" in head  # the sandbox's connection still ends
    for record, head, size in zip(records, origin.heads, (1, 300_000, 5), strict=True):
        assert record.allowed and record.reason is None and record.bytes_sent == len(head)
        assert record.bytes_received == len(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n") + size


def test_head_and_bodiless_responses_end_at_their_head(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def script(port: int, origin_port: int, origin: KeepAliveOrigin) -> list[bytes]:
        return [await get(port, origin_port, "/n/7", "HEAD"), await get(port, origin_port, "/empty"),
                await get(port, origin_port, "/n/3")]

    origin, _, answers = run(through(script))
    assert [number for number, _ in origin.seen] == [1, 1, 1]
    assert answers[0].endswith(b"\r\n\r\n") and b"Content-Length: 7" in answers[0]
    assert answers[1].startswith(b"HTTP/1.1 204") and answers[1].endswith(b"\r\n\r\n")
    assert answers[2].endswith(b"\r\n\r\nxxx")


@pytest.mark.parametrize(("path", "body", "kept"), [
    ("/chunked", b"3\r\nabc\r\n0\r\n\r\n", True),  # its end found in its chunks, the connection left clean
    ("/extra", b"ok", False),  # 4 bytes behind a Content-Length of 2: the announced 2, and the connection is dropped
    ("/close", b"ok", False),  # the destination said close
])
def test_a_response_ends_where_its_framing_says_and_its_connection_is_kept_only_if_clean(
        run: Callable[[Awaitable[Any]], Any], path: str, body: bytes, kept: bool) -> None:
    async def script(port: int, origin_port: int, origin: KeepAliveOrigin) -> list[bytes]:
        return [await get(port, origin_port, path), await get(port, origin_port, "/n/2")]

    origin, (records,), answers = run(through(script))
    assert [number for number, _ in origin.seen] == ([1, 1] if kept else [1, 2])
    assert answers[0].partition(b"\r\n\r\n")[2] == body
    assert records[0].reason is None and answers[1].endswith(b"\r\n\r\nxx")


def test_a_malformed_chunked_body_ends_the_connection(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> tuple[bytes, Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
            await writer.drain()
            await reader.read()  # keeps the connection open: only the proxy can end this
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        origin_port = server.sockets[0].getsockname()[1]
        proxy, port = await proxy_on_a_port(EgressSettings(allow=(f"127.0.0.1:{origin_port}",)))
        try:
            answer = await get(port, origin_port, "/")
        finally:
            records = await proxy.close()
            server.close()
        return answer, records

    answer, records = run(main())
    assert answer == b"" and "malformed" in (records[0].reason or "")  # cut at once: nothing was sent yet


def test_a_kept_connection_the_destination_closed_is_not_used(run: Callable[[Awaitable[Any]], Any]) -> None:
    """The destination closes a kept connection while it waits (its idle timeout): the next request goes on a new
    one, and is answered."""
    async def script(port: int, origin_port: int, origin: KeepAliveOrigin) -> list[bytes]:
        first = await get(port, origin_port, "/n/2")
        for writer in origin.writers:
            writer.close()
        await asyncio.sleep(0.05)  # the FIN reaches the proxy's kept socket
        second = await get(port, origin_port, "/n/4")
        assert origin.proxies[0].upstreams.reused == 0  # type: ignore[attr-defined]  # seen closed: not tried
        return [first, second]

    origin, (records,), answers = run(through(script))
    assert [number for number, _ in origin.seen] == [1, 2]
    assert answers[1].endswith(b"\r\n\r\nxxxx") and records[1].reason is None


def test_a_request_on_a_kept_connection_that_fails_unanswered_is_sent_again_on_a_new_one(
        run: Callable[[Awaitable[Any]], Any]) -> None:
    """The destination closed the kept connection as the request went out (``/drop``: it reads the request and
    closes): nothing came back, so the proxy sends the request again on a new connection, and the sandbox sees
    one answer."""
    async def script(port: int, origin_port: int, origin: KeepAliveOrigin) -> list[bytes]:
        return [await get(port, origin_port, "/drop"), await get(port, origin_port, "/drop")]

    origin, (records,), answers = run(through(script))
    assert origin.seen == [(1, "GET /drop HTTP/1.1"), (1, "GET /drop HTTP/1.1"), (2, "GET /drop HTTP/1.1")]
    assert [a.endswith(b"\r\n\r\nxx") for a in answers] == [True, True]
    assert records[1].reason is None and records[1].bytes_sent == 2 * len(origin.heads[1])  # sent twice, counted


def test_bytes_written_behind_a_bodiless_request_never_reach_the_destination(
        run: Callable[[Awaitable[Any]], Any]) -> None:
    """A second request written late behind a GET (after the proxy sent the first on a kept connection) would be
    served on that connection with a Host of the sandbox's choosing: it is read and dropped, and the connection
    goes on clean."""
    smuggled = b"GET /two HTTP/1.1\r\nHost: internal.example\r\n\r\n"

    async def script(port: int, origin_port: int, origin: KeepAliveOrigin) -> list[bytes]:
        await get(port, origin_port, "/n/1")  # leaves a kept connection
        return [await get(port, origin_port, "/slow", after=smuggled), await get(port, origin_port, "/n/2")]

    origin, (records,), answers = run(through(script))
    assert [line for _, line in origin.seen] == ["GET /n/1 HTTP/1.1", "GET /slow HTTP/1.1", "GET /n/2 HTTP/1.1"]
    assert [number for number, _ in origin.seen] == [1, 1, 1]
    assert all(b"internal.example" not in head for head in origin.heads)
    assert answers[0].count(b"HTTP/1.1 200") == 1 and answers[1].endswith(b"\r\n\r\nxx")


def test_a_request_pipelined_with_its_head_never_reaches_the_destination(run: Callable[[Awaitable[Any]], Any]) -> None:
    """Bytes that arrived with a bodiless request's head are a second request the proxy never checked: they are
    dropped, not sent on (leaving it to the destination to ignore them behind a ``Connection: close``)."""
    async def script(port: int, origin_port: int, origin: KeepAliveOrigin) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET http://127.0.0.1:{origin_port}/n/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /two HTTP/1.1\r\nHost: internal.example\r\n\r\n".encode())
        try:
            return await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()

    origin, (records,), answer = run(through(script))
    assert [line for _, line in origin.seen] == ["GET /n/1 HTTP/1.1"] and answer.count(b"HTTP/1.1 200") == 1
    assert records[0].bytes_sent == len(origin.heads[0])  # what reached the destination: the head alone


def test_no_connection_is_kept_for_another_sandbox(run: Callable[[Awaitable[Any]], Any]) -> None:
    """Each sandbox has its own proxy, and each proxy its own connections: two sandboxes, two connections."""
    async def script(port: int, origin_port: int, origin: KeepAliveOrigin) -> None:
        await get(port, origin_port, "/n/1")
        await get(origin.other_port, origin_port, "/n/1")  # type: ignore[attr-defined]
        await get(port, origin_port, "/n/1")

    origin, _, _ = run(through(script, proxies=2))
    assert [number for number, _ in origin.seen] == [1, 2, 1]


def test_kept_connections_close_when_idle_and_with_their_proxy(run: Callable[[Awaitable[Any]], Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstreams_module, "IDLE_SECONDS", 0.2)

    async def script(port: int, origin_port: int, origin: KeepAliveOrigin) -> list[int]:
        await get(port, origin_port, "/n/1")
        await asyncio.sleep(0.6)
        idle_closed = list(origin.closed_by_peer)
        await get(port, origin_port, "/n/1")  # on a new connection, kept until the proxy closes
        return idle_closed

    origin, _, idle_closed = run(through(script))
    assert idle_closed == [1]
    assert [number for number, _ in origin.seen] == [1, 2]


def test_a_post_and_an_http_1_0_request_are_not_kept(run: Callable[[Awaitable[Any]], Any]) -> None:
    async def script(port: int, origin_port: int, origin: KeepAliveOrigin) -> None:
        for request in (f"POST http://127.0.0.1:{origin_port}/n/1 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
                        f"GET http://127.0.0.1:{origin_port}/n/1 HTTP/1.0\r\n\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request.encode())
            await asyncio.wait_for(reader.read(), 10)
            writer.close()

    origin, _, _ = run(through(script))
    assert all(b"connection: close" in head.lower() for head in origin.heads)


NODE_STREAM = """
const http = require('http');
const server = http.createServer((req, res) => {
  res.writeHead(200, {'Content-Type': 'text/plain'});  // chunked: no length
  res.write('first-part;');
  setTimeout(() => { res.end('second-part'); }, 300);
});
server.listen(0, '127.0.0.1', () => { console.log(server.address().port); });
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (the CI image has Node 20)")
def test_a_streamed_response_from_a_server_that_ends_on_a_half_close_arrives_whole(tmp_path: Path) -> None:
    """Node's http server ends a connection whose client half-closes: a chunked response to a request that went
    without ``Connection: close`` must not be ended by a half-close of the proxy's (found in review)."""
    script = tmp_path / "stream.js"
    script.write_text(NODE_STREAM)
    node = subprocess.Popen(["node", str(script)], stdout=subprocess.PIPE)
    try:
        assert node.stdout is not None
        origin_port = int(node.stdout.readline())

        async def main() -> bytes:
            proxy, port = await proxy_on_a_port(EgressSettings(allow=(f"127.0.0.1:{origin_port}",)))
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(f"GET http://127.0.0.1:{origin_port}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                data = b""
                while not data.endswith(b"0\r\n\r\n"):  # the chunked body's end, as a client reads to it
                    chunk = await asyncio.wait_for(reader.read(65536), 10)
                    assert chunk, data
                    data += chunk
                writer.close()
                return data
            finally:
                await proxy.close()

        answer = asyncio.run(main())
    finally:
        node.kill()
        node.wait()
        if node.stdout is not None:
            node.stdout.close()
    assert b"first-part;" in answer and b"second-part" in answer


def test_a_head_whose_numbers_python_cannot_read_fails_only_its_connection(run: Callable[[Awaitable[Any]], Any]) -> None:
    """A 5,000-digit Content-Length (Python's ``int`` refuses it): the response is relayed to its EOF, no exception
    reaches the event loop (found in review)."""
    errors: list[dict[str, Any]] = []

    async def main() -> bytes:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + b"1" * 5000 + b"\r\n\r\nhello")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        origin_port = server.sockets[0].getsockname()[1]
        proxy, port = await proxy_on_a_port(EgressSettings(allow=(f"127.0.0.1:{origin_port}",), idle_timeout=5))
        try:
            return await get(port, origin_port, "/")
        finally:
            await proxy.close()
            server.close()

    answer = run(main())
    assert not errors, [str(e.get("exception")) for e in errors]
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello")


@pytest.mark.parametrize(("head", "method", "length", "reusable"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "GET", 12, True),
    (b"HTTP/1.1 200 OK\r\ncontent-length: 12, 12\r\n\r\n", "GET", 12, True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n", "GET", None, False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: +12\r\n\r\n", "GET", None, False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", None, False),
    (b"HTTP/1.1 200 OK\r\n\r\n", "GET", None, False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", None, True),  # its chunks tell its end
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET", None, False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: keep-alive, Close\r\n\r\n", "GET", 12, False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\n", "GET", 12, False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "HEAD", 0, True),
    (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n", "GET", 0, True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", "GET", 0, True),
    (b"HTTP/1.1 100 Continue\r\n\r\n", "GET", None, False),
    (b"HTTP/1.1 OK\r\n\r\n", "GET", None, False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD", 0, True),  # RFC 9112's order: no body first
    (b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 0, True),
    (b"HTTP/1.1 0204 X\r\nContent-Length: 5\r\n\r\n", "GET", None, False),  # a status is 3 digits
    (b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 19 + b"\r\n\r\n", "GET", None, False),
])
def test_response_framing(head: bytes, method: str, length: int | None, reusable: bool) -> None:
    framed = response_framing(head, method)
    assert (framed.length, framed.reusable) == (length, reusable)
