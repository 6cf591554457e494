"""The server's HTTP protocol writes a response of known length in one write (server/protocol.py, ``_OneWrite``).

The protocol itself, fed a request on a transport that records what is written: how many writes
a response takes, not how long, so nothing here is timed. A response whose head would wait for a
body that comes late (a stream), or never (``HEAD``), must not be held; nor the interim ``100
Continue``; and a response that fails after its head still gets the head before the close.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from sandlot.server.protocol import bounded_http

BODY = b'{"status":"ok"}'


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8765), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def plain(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})


async def serve(app: Any, request: bytes, *, until: Any = None) -> RecordingTransport:
    """``request`` to ``app`` through the server's protocol; the transport once the response is complete
    (or, with ``until``, once that coroutine function, given the transport, returns)."""
    config = Config(app=app, http=bounded_http(5.0), lifespan="off", log_config=None, access_log=False)
    config.load()
    protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={},
                                          _loop=asyncio.get_running_loop())
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    if until is not None:
        await until(transport, protocol)
    for _ in range(1000):
        cycle = protocol.cycle
        if cycle is not None and (cycle.response_complete or transport.closed):
            break
        await asyncio.sleep(0.001)
    else:
        raise AssertionError(f"the response did not complete: {transport.writes}")
    protocol.connection_lost(None)
    return transport


def post(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return (b"POST /v1/execute HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


def test_a_response_of_known_length_is_one_write() -> None:
    transport = asyncio.run(serve(plain, post()))
    assert len(transport.writes) == 1, transport.writes
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 15" in head and body == BODY


def test_each_of_several_requests_on_a_connection_is_one_write() -> None:
    transport = asyncio.run(serve(plain, post() + post()))
    assert [w.count(b"HTTP/1.1 200 OK") for w in transport.writes] == [1, 1], transport.writes


def test_an_empty_body_of_known_length_goes_out_with_its_head() -> None:
    async def empty(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    transport = asyncio.run(serve(empty, post()))
    assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 201 Created\r\n")


def test_a_streams_head_is_not_held_for_its_first_chunk() -> None:
    chunk_may_go = asyncio.Event()

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await chunk_may_go.wait()
        await send({"type": "http.response.body", "body": b"event: done\ndata: {}\n\n", "more_body": False})

    async def head_is_out(transport: RecordingTransport, _protocol: Any) -> None:
        for _ in range(1000):
            if transport.writes:
                break
            await asyncio.sleep(0.001)
        assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\n"), transport.writes
        assert b"transfer-encoding: chunked" in transport.writes[0]
        chunk_may_go.set()

    async def run() -> RecordingTransport:
        return await serve(stream, post(), until=head_is_out)

    transport = asyncio.run(run())
    assert len(transport.writes) == 2 and b"event: done" in transport.writes[1]


def test_a_head_request_gets_its_head() -> None:
    transport = asyncio.run(serve(plain, b"HEAD /healthz HTTP/1.1\r\nhost: x\r\n\r\n"))
    assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")


def test_100_continue_is_not_held() -> None:
    async def send_the_body(transport: RecordingTransport, protocol: Any) -> None:
        for _ in range(1000):
            if transport.writes:
                break
            await asyncio.sleep(0.001)
        assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        protocol.data_received(b"{}")

    async def run() -> RecordingTransport:
        request = post(extra=b"expect: 100-continue\r\n")
        return await serve(plain, request[:-2], until=send_the_body)

    transport = asyncio.run(run())
    assert len(transport.writes) == 2 and transport.writes[1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[1].endswith(BODY)


def test_a_response_that_fails_after_its_head_still_sends_the_head() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        raise RuntimeError("the app broke before its body")

    transport = asyncio.run(serve(broken, post()))
    assert transport.closed
    assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n"), transport.writes
