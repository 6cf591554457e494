"""The Python client against a real server on a loopback port: results, streams, sessions, errors.

No mocks: every test talks HTTP to the ``server_url`` / ``auth_server_url`` fixtures,
except the SSE chunking test, which needs bytes split where no real server would split them
and so uses httpx's own fake transport at the seam the client exposes for it.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import API_KEY

import sandlot.client
from sandlot._errors import SetupError, SpawnError
from sandlot.client import (
    AsyncClient,
    AuthenticationError,
    CapacityError,
    Client,
    ClientSession,
    ClosedError,
    DisplayData,
    ErrorOutput,
    ExecuteResult,
    ExecutionResult,
    FileInfo,
    InvalidRequestError,
    NotFoundError,
    RequestTimeoutError,
    SandboxError,
    SessionInfo,
    StreamEvent,
    StreamOutput,
    TooLargeError,
    UnavailableError,
)
from sandlot.client._base import quote_path
from sandlot.client._errors import error_from_event, error_from_response
from sandlot.client._sse import SSEDecoder
from sandlot.testing.serving import free_port

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIXED = "import sys\nprint('a')\nprint('b', file=sys.stderr)\ndisplay(3)\n4"
# stdout, stderr, a display_data, the trailing expression's execute_result, then done.
MIXED_EVENTS = ["stdout", "stderr", "output", "output", "done"]


@pytest.fixture
def client(server_url: str) -> Iterator[Client]:
    with Client(server_url) as c:
        yield c


@pytest.fixture
def auth_client(auth_server_url: str) -> Iterator[Client]:
    with Client(auth_server_url, api_key=API_KEY) as c:
        yield c


def test_all_is_sorted_and_documented() -> None:
    assert sandlot.client.__all__ == sorted(sandlot.client.__all__)
    for name in sandlot.client.__all__:
        assert getattr(sandlot.client, name).__doc__, name


# ---- one-shot runs ----------------------------------------------------------------------

def test_execute_returns_a_typed_result(client: Client) -> None:
    result = client.execute("print(6 * 7)")
    assert isinstance(result, ExecutionResult)
    assert result.status == "ok"
    assert result.stdout == "42\n"
    assert result.outputs == [StreamOutput(name="stdout", text="42\n")]
    assert result.id.startswith("exe_")


def test_rich_outputs_come_back_typed(client: Client) -> None:
    frame = client.execute("import pandas as pd\npd.DataFrame({'a': [1, 2]})").outputs[0]
    assert isinstance(frame, ExecuteResult)
    assert "<table" in frame.data["text/html"]
    figure = client.execute("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nNone").outputs[0]
    assert isinstance(figure, DisplayData)
    assert base64.b64decode(figure.data["image/png"]).startswith(PNG_SIGNATURE)


def test_user_error_is_data_not_an_exception(client: Client) -> None:
    result = client.execute("raise ValueError('bad value')")
    assert result.status == "error"
    assert result.error is not None and (result.error.ename, result.error.evalue) == ("ValueError", "bad value")
    assert isinstance(result.outputs[-1], ErrorOutput)


def test_files_and_env_reach_a_one_shot_run(client: Client) -> None:
    code = "import os\nprint(open('in/data.csv').read() + os.environ['GREETING'] + open('t.txt').read())"
    result = client.execute(code, files={"in/data.csv": b"a,b\n", "t.txt": "é"}, env={"GREETING": "hi"})
    assert result.stdout == "a,b\nhié\n"


def test_a_run_timeout_is_data(client: Client) -> None:
    assert client.execute("while True: pass", timeout=0.5).status == "timeout"


# ---- streaming --------------------------------------------------------------------------

def test_streaming_with_a_callback(client: Client) -> None:
    seen: list[tuple[str, Any]] = []
    result = client.execute(MIXED, on_event=lambda name, data: seen.append((name, data)))
    assert [name for name, _ in seen] == MIXED_EVENTS
    assert seen[0][1] == StreamOutput(name="stdout", text="a\n")
    assert seen[1][1] == StreamOutput(name="stderr", text="b\n")
    assert isinstance(seen[2][1], DisplayData) and isinstance(seen[3][1], ExecuteResult)
    assert seen[-1][1] == result
    assert result.stdout == "a\n" and result.stderr == "b\n"


def test_streaming_with_an_iterator(client: Client) -> None:
    with client.stream(MIXED) as events:
        collected = list(events)
    assert [e.event for e in collected] == MIXED_EVENTS
    assert all(isinstance(e, StreamEvent) for e in collected)
    done = collected[-1].data
    assert isinstance(done, ExecutionResult) and done.status == "ok"
    assert done.outputs[-1] == collected[3].data


def test_events_arrive_while_the_run_goes_on(client: Client) -> None:
    # The cell cannot finish until we answer its first line: only a real stream gets that far.
    code = ("import os, time\nprint('waiting', flush=True)\n"
            "while not os.path.exists('go'):\n    time.sleep(0.02)\nprint('released')")
    with client.session() as session, session.stream(code, timeout=30) as events:
        first = next(events)
        assert first.event == "stdout" and first.data.text == "waiting\n"
        session.upload("go", b"")
        rest = list(events)
    assert [e.event for e in rest] == ["stdout", "done"]
    assert rest[-1].data.stdout == "waiting\nreleased\n"


def test_a_user_exception_streams_as_an_error_event(client: Client) -> None:
    events = list(client.stream("print('x')\n1 / 0"))
    assert [e.event for e in events] == ["stdout", "error", "done"]
    assert isinstance(events[1].data, ErrorOutput) and events[1].data.ename == "ZeroDivisionError"
    assert events[-1].data.status == "error"


def test_a_refused_stream_raises_its_status_error(client: Client) -> None:
    huge = "x = 1\n" * 200_000  # over the 1 MiB code limit
    with pytest.raises(TooLargeError, match="limit"):
        list(client.stream(huge))
    with pytest.raises(TooLargeError):
        client.execute(huge, on_event=lambda name, data: None)


class _HeadersSeen(httpx.HTTPTransport):
    """A real transport that says when a streaming answer's headers have come back."""

    def __init__(self) -> None:
        super().__init__()
        self.streaming = threading.Event()
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.headers.get("accept") == "text/event-stream":
            self.statuses.append(response.status_code)
            self.streaming.set()
        return response


def test_a_server_failure_mid_stream_raises(client: Client, server_url: str) -> None:
    # A cell queued behind a busy one gets its 200 and then waits; deleting the session makes
    # the queued cell fail inside the server, after the stream began: an `error` event that
    # carries the contract's error body, which must raise, not pass as data.
    session = client.session()
    busy_started = threading.Event()
    busy = threading.Thread(target=session.execute, args=("import time\nprint(1, flush=True)\ntime.sleep(60)",),
                            kwargs={"on_event": lambda name, data: busy_started.set()})
    busy.start()
    assert busy_started.wait(30)
    raised: list[Exception] = []
    transport = _HeadersSeen()
    with Client(server_url, transport=transport) as other:
        queued_session = other.get_session(session.id)

        def queued() -> None:
            try:
                list(queued_session.stream("print('never')"))
            except Exception as exc:  # handed to the test thread
                raised.append(exc)

        waiter = threading.Thread(target=queued)
        waiter.start()
        assert transport.streaming.wait(30)
        session.close()
        waiter.join(30)
        busy.join(30)
    assert transport.statuses == [200]  # so the failure came as an event, after the stream began
    (error,) = raised
    # Which class depends on how the engine words a session closed under a waiting cell.
    assert isinstance(error, ClosedError | NotFoundError) and "closed" in str(error)


def test_leaving_a_session_stream_early_interrupts_the_cell(client: Client) -> None:
    with client.session() as session:
        session.execute("x = 41")
        with session.stream("import time\nprint('go', flush=True)\ntime.sleep(60)") as events:
            assert next(events).event == "stdout"
        result = session.execute("x + 1", timeout=10)
        assert result.outputs[-1].data == {"text/plain": "42"}  # type: ignore[union-attr]
        left = session.notebook()["cells"][1]
        assert [o.get("ename") for o in left["outputs"]] == [None, "KeyboardInterrupt"]


def test_sse_parsing_is_robust_to_chunking() -> None:
    body = ("event: stdout\ndata: {\"name\":\"stdout\",\"text\":\"h\u00e9llo \u2713\"}\n\n"
            ": a comment\r\n"
            "event: future\r\ndata: [1,\r\ndata: 2]\r\n\r\n"
            "event: done\ndata: {\"id\":\"exe_1\",\"status\":\"ok\",\"stdout\":\"h\u00e9llo \u2713\"}\n\n").encode()

    def one_byte_at_a_time(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Trickle(body))

    with Client("http://sandlot.invalid", transport=httpx.MockTransport(one_byte_at_a_time)) as c:
        events = list(c.stream("ignored"))
    assert [(e.event, e.data) for e in events[:2]] == [("stdout", StreamOutput(name="stdout", text="h\u00e9llo \u2713")),
                                                       ("future", [1, 2])]
    assert events[2].event == "done" and events[2].data.stdout == "h\u00e9llo \u2713"


class _Trickle(httpx.SyncByteStream):
    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        for i in range(len(self.body)):
            yield self.body[i:i + 1]


def test_sse_decoder_follows_the_spec() -> None:
    decoder = SSEDecoder()
    assert decoder.decode("data:no space") is None
    assert decoder.decode("data:  two spaces") is None
    event = decoder.decode("")
    assert event is not None and (event.event, event.data) == ("message", "no space\n two spaces")
    assert decoder.decode("event: lonely") is None
    assert decoder.decode("") is None  # no data: nothing dispatched, and the name is forgotten
    decoder.decode("data: x")
    event = decoder.decode("")
    assert event is not None and event.event == "message"


# ---- async ------------------------------------------------------------------------------

def test_async_client_does_the_same(server_url: str) -> None:
    async def main() -> None:
        async with AsyncClient(server_url) as client:
            result = await client.execute("print(6 * 7)")
            assert result.stdout == "42\n"
            assert (await client.execute("1 / 0")).status == "error"

            seen: list[str] = []

            async def on_event(name: str, data: Any) -> None:
                seen.append(name)

            streamed = await client.execute(MIXED, on_event=on_event)
            assert seen == MIXED_EVENTS and streamed.status == "ok"
            sync_seen: list[str] = []
            await client.execute("print(1)", on_event=lambda name, data: sync_seen.append(name))
            assert sync_seen == ["stdout", "done"]

            async with client.stream(MIXED) as events:
                assert [e.event async for e in events] == MIXED_EVENTS

            results = await client.batch(["1 + 1", {"code": "print('b')"}])
            assert [r.status for r in results] == ["ok", "ok"]
            streamed_batch = [(i, r.stdout) async for i, r in client.batch_stream(["print('a')", "print('b')"])]
            assert streamed_batch == [(0, "a\n"), (1, "b\n")]
            assert (await client.health())["status"] == "ok"

    asyncio.run(main())


def test_async_session_lifecycle(server_url: str) -> None:
    async def main() -> None:
        async with AsyncClient(server_url) as client:
            async with client.session() as session:
                await session.execute("x = 20")
                assert (await session.execute("x * 2 + 2")).outputs[0].data == {"text/plain": "42"}  # type: ignore[union-attr]
                await session.upload("dir/f.txt", b"payload")
                assert await session.download("dir/f.txt") == b"payload"
                assert [f.path for f in await session.files()] == ["dir/f.txt"]
                assert len((await session.notebook())["cells"]) == 2
                assert (await session.info()).execution_count == 2
                assert session.id in [s.id for s in await client.list_sessions()]
                again = await client.get_session(session.id)
                assert (await again.execute("x")).outputs[0].data == {"text/plain": "20"}  # type: ignore[union-attr]
                async with session.stream("print('s')") as events:
                    assert [e.event async for e in events] == ["stdout", "done"]

                started = asyncio.Event()

                def on_event(name: str, data: Any) -> None:
                    started.set()

                cell = asyncio.ensure_future(session.execute("import time\nprint(1, flush=True)\ntime.sleep(60)",
                                                             on_event=on_event))
                await asyncio.wait_for(started.wait(), 30)
                await session.interrupt()
                interrupted = await asyncio.wait_for(cell, 30)
                assert interrupted.error is not None and interrupted.error.ename == "KeyboardInterrupt"
            with pytest.raises(NotFoundError):
                await session.execute("x")
            plain = await client.session()
            await plain.close()
            await plain.close()  # twice is fine

    asyncio.run(main())


# ---- sessions ---------------------------------------------------------------------------

def test_session_lifecycle(client: Client) -> None:
    with client.session(timeout=20, idle_timeout=120, env={"WHO": "me"}) as session:
        assert session.id.startswith("ses_")
        info = session.info()
        assert isinstance(info, SessionInfo) and info.id == session.id and info.execution_count == 0
        assert info.expires_at > info.created_at
        session.execute("import os\ncounter = 1")
        session.execute("counter += 1")
        result = session.execute("print(counter, os.environ['WHO'])")
        assert result.stdout == "2 me\n" and result.execution_count == 3

        session.upload("data/in.bin", bytes(range(256)))
        session.execute("open('out.txt', 'w').write(str(len(open('data/in.bin', 'rb').read())))")
        assert session.download("data/in.bin") == bytes(range(256))
        assert session.download("out.txt") == b"256"
        files = {f.path: f for f in session.files()}
        assert set(files) == {"data/in.bin", "out.txt"}
        assert isinstance(files["out.txt"], FileInfo) and files["out.txt"].size == 3
        session.delete_file("out.txt")
        with pytest.raises(NotFoundError):
            session.download("out.txt")

        notebook = session.notebook()
        assert notebook["nbformat"] == 4
        assert [cell["source"] for cell in notebook["cells"]][:2] == ["import os\ncounter = 1", "counter += 1"]

        assert session.id in [s.id for s in client.list_sessions()]
        same = client.get_session(session.id)
        assert same.execute("counter").outputs[0].data == {"text/plain": "2"}  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        session.execute("counter")
    with pytest.raises(NotFoundError):
        client.get_session(session.id)
    assert session.id not in [s.id for s in client.list_sessions()]
    session.close()  # closing again is fine


def test_file_paths_are_quoted_not_normalized(client: Client) -> None:
    with client.session() as session:
        for name in ["with space.txt", "hash#tag?.txt", "d i r/%41 100%.txt", "caf\u00e9.txt"]:
            session.upload(name, name.encode())
            assert session.download(name) == name.encode()
        listed = {f.path for f in session.files()}
        assert {"with space.txt", "hash#tag?.txt", "d i r/%41 100%.txt", "caf\u00e9.txt"} <= listed
        assert session.execute("print(open('hash#tag?.txt').read())").stdout == "hash#tag?.txt\n"
        # The server, not the client, decides about "..": the request must reach it as written.
        for escaping in ["../escape.txt", "a/../../escape.txt", "/etc/passwd"]:
            with pytest.raises(InvalidRequestError, match=r"\.\.|absolute"):
                session.upload(escaping, b"x")
    assert quote_path("a/../b c#") == "a/%2E%2E/b%20c%23"


def test_interrupt_a_long_cell_from_another_thread(client: Client) -> None:
    with client.session() as session:
        session.execute("kept = 'state'")
        started = threading.Event()
        outcome: list[ExecutionResult] = []

        def run() -> None:
            outcome.append(session.execute("import time\nprint('started', flush=True)\ntime.sleep(60)",
                                           on_event=lambda name, data: started.set()))

        worker = threading.Thread(target=run)
        worker.start()
        assert started.wait(30)
        session.interrupt()
        worker.join(30)
        assert not worker.is_alive()
        (result,) = outcome
        assert result.status == "error"
        assert result.error is not None and result.error.ename == "KeyboardInterrupt"
        assert session.execute("kept").outputs[0].data == {"text/plain": "'state'"}  # type: ignore[union-attr]


def test_batch(client: Client) -> None:
    with client.session() as session:
        results = client.batch(["print('one')", {"code": "y = 5", "session_id": session.id},
                                {"code": "y * 2", "session_id": session.id}, {"code": "1 / 0", "timeout": 5}])
        assert [r.status for r in results] == ["ok", "ok", "ok", "error"]
        assert results[0].stdout == "one\n"
        assert results[2].outputs[0].data == {"text/plain": "10"}  # type: ignore[union-attr]
        assert session.execute("y").outputs[0].data == {"text/plain": "5"}  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        client.batch([{"code": "1", "session_id": session.id}])


def test_batch_stream(client: Client) -> None:
    """Each result as it comes, in item order; a batch refused before it runs raises as ``batch`` does."""
    with client.session() as session:
        got = list(client.batch_stream(["print('one')", {"code": "z = 2", "session_id": session.id},
                                        {"code": "z * 21", "session_id": session.id}, "1 / 0"]))
        assert [index for index, _ in got] == [0, 1, 2, 3]
        assert got[0][1].stdout == "one\n" and got[3][1].status == "error"
        assert got[2][1].outputs[0].data == {"text/plain": "42"}  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        list(client.batch_stream([{"code": "1", "session_id": session.id}]))


def test_health(client: Client) -> None:
    health = client.health()
    assert health["status"] == "ok" and "version" in health


# ---- errors -----------------------------------------------------------------------------

def test_wrong_or_missing_key_is_401(auth_server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANDLOT_API_KEY", raising=False)
    for key in ["wrong-key", None]:
        with Client(auth_server_url, api_key=key) as c, pytest.raises(AuthenticationError, match="API key") as caught:
            c.execute("print(1)")
        assert caught.value.http_status == 401
    with Client(auth_server_url, api_key="wrong-key") as c:
        assert c.health()["status"] == "ok"  # /healthz is always open


def test_api_key_comes_from_the_environment(auth_server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDLOT_API_KEY", API_KEY)
    with Client(auth_server_url) as c:
        assert c.execute("print(1)").stdout == "1\n"
        assert "test-key" not in repr(c)


def test_unknown_session_is_404(auth_client: Client) -> None:
    with pytest.raises(NotFoundError, match="ses_nope"):
        auth_client.get_session("ses_nope")
    with pytest.raises(NotFoundError):
        ClientSession(auth_client, "ses_nope").execute("1")


def test_bad_timeout_is_400(auth_client: Client) -> None:
    with pytest.raises(InvalidRequestError, match="timeout") as caught:
        auth_client.execute("print(1)", timeout=-1)
    assert caught.value.http_status == 400


def test_code_over_1_mib_is_413(auth_client: Client) -> None:
    with pytest.raises(TooLargeError, match="limit"):
        auth_client.execute("#" * ((1 << 20) + 1))


def test_session_quota_is_429_with_retry_after(auth_client: Client) -> None:
    opened = []
    try:
        with pytest.raises(CapacityError) as caught:
            for _ in range(4):  # the quota is 3 sessions per key
                opened.append(auth_client.session())
        assert len(opened) == 3
        assert caught.value.retry_after == 5.0
        assert caught.value.http_status == 429
    finally:
        for session in opened:
            session.close()
    assert auth_client.list_sessions() == []


def test_error_answers_map_onto_the_tree() -> None:
    def answer(status: int, body: Any = None, text: str = "", headers: dict[str, str] | None = None) -> Exception:
        response = httpx.Response(status, json=body, headers=headers) if body is not None else httpx.Response(
            status, text=text, headers=headers)
        return error_from_response(response)

    spawn = answer(500, {"error": {"type": "spawn_error", "message": "no zygote"}})
    assert type(spawn) is SpawnError and str(spawn) == "no zygote"  # refined, still a SandboxError
    assert type(answer(500, {"error": {"type": "internal_error", "message": "x"}})) is SandboxError
    assert type(answer(503, {"error": {"type": "setup_error", "message": "x"}})) is SetupError
    assert type(answer(404, {"error": {"type": "too_large", "message": "x"}})) is NotFoundError  # the status wins
    proxy = answer(502, text="<html>Bad Gateway</html>")
    assert type(proxy) is UnavailableError and "502 Bad Gateway: <html>" in str(proxy)
    assert type(answer(418, text="")) is InvalidRequestError
    busy = answer(429, {"error": {"type": "capacity", "message": "x"}}, headers={"Retry-After": "7"})
    assert isinstance(busy, CapacityError) and busy.retry_after == 7.0
    assert isinstance(error_from_event({"type": "capacity", "message": "m"}), CapacityError)
    assert type(error_from_event({"type": "something_new"})) is SandboxError


def test_unreachable_server_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url) as c, pytest.raises(UnavailableError, match="could not reach the server") as caught:
        c.execute("print(1)")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)

    async def main() -> None:
        async with AsyncClient(url) as ac:
            with pytest.raises(UnavailableError, match="could not reach"):
                await ac.health()

    asyncio.run(main())


def test_client_timeout_is_request_timeout(server_url: str) -> None:
    with Client(server_url, timeout=0.2) as c, pytest.raises(RequestTimeoutError) as caught:
        c.execute("import time\ntime.sleep(2)")
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)
    assert isinstance(caught.value, UnavailableError)  # a timeout is one way of being unavailable


def test_a_run_timeout_longer_than_the_client_timeout_is_waited_for(server_url: str) -> None:
    with Client(server_url, timeout=0.5) as c:
        assert c.execute("import time\ntime.sleep(1)\nprint('slept')", timeout=5).stdout == "slept\n"


def test_a_closed_client_says_so(server_url: str) -> None:
    c = Client(server_url)
    c.close()
    with pytest.raises(ClosedError):
        c.execute("1")
