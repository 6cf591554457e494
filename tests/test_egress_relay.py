"""The egress relay's byte paths (egress/relay.py), on the proxy's host-port seam, on both event loops.

What the relay splices in the kernel (a request body, a tunnel both ways, a response body) and what it must
copy through user space (a response head it rewrites, over several reads) arrive byte for byte and are counted
exactly; a half-close is passed on; nothing past the run's byte cap is sent; and a connection that cannot have a
pipe (the server out of descriptors) copies instead and is just as exact. The origin is a raw server in the
test's own loop, so its response head (keep-alive headers, a long field) and what it read are the test's.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sandlot.egress import EgressSettings
from sandlot.egress import relay as relay_module
from sandlot.testing.egress import proxy_on_a_port

BODY = random.Random(14).randbytes(3 << 20)
PAD = b"p" * 10_000  # a response head longer than two of the relay's head reads
HEAD = (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Pad: " + PAD
        + b"\r\nContent-Length: %d\r\n\r\n" % len(BODY))


class RawOrigin:
    """``/body``: ``HEAD`` written in three pieces apart in time, then ``BODY``; ``/echo``: reads to the
    client's EOF, then answers the SHA-256 and length of the body. Keeps every byte it read and wrote."""

    def __init__(self) -> None:
        self.read: list[bytes] = []
        self.written: list[bytes] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if head.split(b" ")[1] == b"/body":
            self.read.append(head)
            out = HEAD + BODY
            for piece in (HEAD[:30], HEAD[30:5000], HEAD[5000:]):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.02)
            writer.write(BODY)
        else:
            body = await reader.read()  # to the EOF the client's half-close became
            self.read.append(head + body)
            answer = f"{hashlib.sha256(body[body.index(b'|') + 1:]).hexdigest()} {len(body)}".encode()
            out = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer)
            writer.write(out)
        self.written.append(out)
        await writer.drain()
        writer.close()


async def exchange(port: int, data: bytes, half_close: bool) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    if half_close:
        writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


async def scenario(max_bytes: int = 256 << 20) -> tuple[list[Any], list[bytes], RawOrigin, int]:
    origin = RawOrigin()
    origin_port = await origin.start()
    proxy, port = await proxy_on_a_port(EgressSettings(allow=(f"127.0.0.1:{origin_port}",), max_bytes=max_bytes))
    upload = b"|" + BODY[: 2 << 20]
    echo = (f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(upload)}\r\n\r\n").encode() + upload
    got = [await exchange(port, f"GET http://127.0.0.1:{origin_port}/body HTTP/1.1\r\nHost: x\r\n\r\n".encode(), False)]
    if max_bytes >= 256 << 20:
        got.append(await exchange(port, echo.replace(b"/echo", f"http://127.0.0.1:{origin_port}/echo".encode(), 1),
                                  True))  # plain HTTP: the body spliced up, the answer's head rewritten
        got.append(await exchange(port, f"CONNECT 127.0.0.1:{origin_port} HTTP/1.1\r\n\r\n".encode() + echo, True))
    records = await proxy.close()
    origin.server.close()
    return records, got, origin, max_bytes


def check_exact(records: list[Any], got: list[bytes], origin: RawOrigin) -> None:
    response = got[0]
    head, _, body = response.partition(b"\r\n\r\n")
    assert body == BODY
    fields = head.lower().split(b"\r\n")
    assert b"connection: close" in fields and not any(f.startswith(b"keep-alive") for f in fields)
    assert b"x-pad: " + PAD in fields and fields.count(b"connection: close") == 1
    digest = f"{hashlib.sha256(BODY[: 2 << 20]).hexdigest()} {(2 << 20) + 1}".encode()
    assert got[1].endswith(b"\r\n\r\n" + digest) and b"connection: close" in got[1].lower()
    assert got[2] == b"HTTP/1.1 200 Connection Established\r\n\r\n" + origin.written[2]  # a tunnel: untouched
    for record, read, written in zip(records, origin.read, origin.written, strict=True):
        assert record.allowed and record.reason is None
        assert (record.bytes_sent, record.bytes_received) == (len(read), len(written))


def test_spliced_and_copied_bytes_arrive_whole_and_are_counted_exactly(run: Callable[[Awaitable[Any]], Any]) -> None:
    check_exact(*run(scenario())[:3])


def test_without_a_pipe_a_connection_copies_and_is_just_as_exact(run: Callable[[Awaitable[Any]], Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    refused = []

    def no_pipe() -> tuple[int, int]:
        refused.append(1)
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(relay_module, "_pipe", no_pipe)
    check_exact(*run(scenario())[:3])
    assert len(refused) >= 3  # each connection tried, and copied instead


def test_nothing_past_the_byte_cap_is_sent(run: Callable[[Awaitable[Any]], Any]) -> None:
    records, got, origin, max_bytes = run(scenario(max_bytes=1 << 20))
    assert "bytes" in (records[0].reason or "")
    assert len(got[0]) <= max_bytes - records[0].bytes_sent  # the rewritten head is shorter than the origin's
    assert records[0].bytes_received <= len(origin.written[0])
