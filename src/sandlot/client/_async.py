"""The async face: ``AsyncClient``, ``AsyncClientSession`` and ``AsyncEventStream``.

The mirror of ``_sync``, with ``await``: only I/O lives here, every request and
answer is built and read in ``_base``. Keep the two files in step.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Generator, Mapping, Sequence
from typing import Any, TypeVar, cast

import httpx

from .._errors import ClosedError, NotFoundError
from .._models import CommandResult, ExecutionResult
from . import _base as calls
from ._base import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, BaseClient, BatchItem, Call
from ._errors import error_from_response, transport_errors
from ._sse import ServerSentEvent, SSEDecoder, ended_early, to_batch_result, to_stream_event
from ._types import AsyncEventCallback, FileInfo, SessionInfo, StreamEvent

T = TypeVar("T")


class AsyncClient(BaseClient):
    """An asyncio client for a sandlot server: ``async with AsyncClient() as client: await client.execute(...)``.

    The same arguments as ``Client``; ``transport`` is an ``httpx.AsyncBaseTransport``.
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, api_key: str | None = None, timeout: float | None = DEFAULT_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, api_key, timeout)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self._default_headers(), transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections; the client cannot be used afterwards. Sessions on the server stay open."""
        await self._http.aclose()

    # ---- runs ---------------------------------------------------------------------------

    async def execute(self, code: str, *, timeout: float | None = None, files: Mapping[str, bytes | str] | None = None,
                      env: Mapping[str, str] | None = None, on_event: AsyncEventCallback | None = None,
                      environment: str | None = None, network: calls.Network = None) -> ExecutionResult:
        """Run ``code`` once in a fresh sandbox; see ``Client.execute``. ``on_event`` may be a coroutine function."""
        call = calls.execute_call(code, timeout=timeout, files=files, env=env, stream=on_event is not None,
                                  environment=environment, network=network)
        return await (self._send(call) if on_event is None else self._run_streaming(call, on_event))

    def stream(self, code: str, *, timeout: float | None = None, files: Mapping[str, bytes | str] | None = None,
               env: Mapping[str, str] | None = None, environment: str | None = None) -> AsyncEventStream:
        """Run ``code`` once, yielding ``StreamEvent`` objects (``async for``); the last is ``done``.

        The request goes out when iteration starts. Leaving early (``aclose()`` or ``async with``)
        disconnects, which cancels the run.
        """
        return AsyncEventStream(self._events(calls.execute_call(code, timeout=timeout, files=files, env=env, stream=True,
                                                       environment=environment)))

    async def run_command(self, cmd: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                    timeout: float | None = None, stdin: str | None = None) -> CommandResult:
        """Run ``/bin/sh -c cmd`` once in a fresh sandbox; a non-zero exit is data (``status == "error"``)."""
        return await self._send(calls.command_call(cmd, session_id=None, cwd=cwd, env=env, timeout=timeout, stdin=stdin))

    async def batch(self, items: Sequence[BatchItem]) -> list[ExecutionResult]:
        """Run many items in one round trip; see ``Client.batch``."""
        return await self._send(calls.batch_call(items))

    async def batch_stream(self, items: Sequence[BatchItem]) -> AsyncGenerator[tuple[int, ExecutionResult], None]:
        """``batch``, streamed; see ``Client.batch_stream``."""
        async with contextlib.aclosing(self._raw_events(calls.batch_call(items, stream=True))) as raws:
            async for raw in raws:
                result = to_batch_result(raw)
                if result is not None:
                    yield result
                elif raw.event == "done":
                    return
        raise ended_early(self.base_url)

    # ---- sessions -----------------------------------------------------------------------

    def session(self, *, timeout: float | None = None, idle_timeout: float | None = None,
                env: Mapping[str, str] | None = None, environment: str | None = None,
                network: calls.Network = None) -> SessionOpener:
        """Create a stateful session: ``s = await client.session()``, or ``async with client.session() as s:``,
        which deletes it at the end of the block."""
        call = calls.create_session_call(timeout=timeout, idle_timeout=idle_timeout, env=env,
                                         environment=environment, network=network)
        return SessionOpener(self, call)

    async def get_session(self, session_id: str) -> AsyncClientSession:
        """Attach to an existing session (``NotFoundError`` if there is none by that id for this key)."""
        return AsyncClientSession(self, (await self._send(calls.get_session_call(session_id))).id)

    async def list_sessions(self, state: str | None = None) -> list[SessionInfo]:
        """This API key's sessions (``state``: only the ``running`` or the ``paused`` ones)."""
        return await self._send(calls.list_sessions_call(state))

    async def import_session(self, archive: bytes) -> AsyncClientSession:
        """A new session from an archive made by ``AsyncClientSession.archive``."""
        return AsyncClientSession(self, (await self._send(calls.import_call(archive))).id)

    async def environments(self, *, distributions: bool = False) -> list[dict[str, Any]]:
        """The environments runs and sessions may name; see ``Client.environments``."""
        return await self._send(calls.environments_call(distributions))

    async def health(self) -> dict[str, Any]:
        """The server's ``/healthz`` body; ``UnavailableError`` while it is draining."""
        return await self._send(calls.health_call())

    # ---- I/O ----------------------------------------------------------------------------

    async def _send(self, call: Call[T]) -> T:
        self._check_open()
        with transport_errors(self.base_url):
            response = await self._http.send(self._request(self._http, call))
        return self._finish(call, response)

    async def _raw_events(self, call: Call[Any]) -> AsyncGenerator[ServerSentEvent, None]:
        """The events of a streamed call as they arrive; closing this early disconnects, and the server cancels
        the work."""
        self._check_open()
        with transport_errors(self.base_url):
            response = await self._http.send(self._request(self._http, call), stream=True)
            try:
                if not response.is_success:
                    await response.aread()
                    raise error_from_response(response)
                response.encoding = "utf-8"  # what SSE always is, whatever the headers say
                decoder = SSEDecoder()
                async for line in response.aiter_lines():
                    raw = decoder.decode(line)
                    if raw is not None:
                        yield raw
            finally:
                await response.aclose()

    async def _events(self, call: Call[ExecutionResult]) -> AsyncGenerator[StreamEvent, None]:
        async with contextlib.aclosing(self._raw_events(call)) as raws:
            async for raw in raws:
                event = to_stream_event(raw)
                yield event
                if event.event == "done":
                    return
        raise ended_early(self.base_url)

    async def _run_streaming(self, call: Call[ExecutionResult], on_event: AsyncEventCallback) -> ExecutionResult:
        last: StreamEvent | None = None
        async with AsyncEventStream(self._events(call)) as events:
            async for last in events:
                returned = on_event(last.event, last.data)
                if inspect.isawaitable(returned):
                    await returned
        # _events ends right after "done", or raises: the last event holds the result.
        return cast(ExecutionResult, cast(StreamEvent, last).data)

    def _check_open(self) -> None:
        if self._http.is_closed:
            raise ClosedError("the client is closed")


class AsyncEventStream(AsyncIterator[StreamEvent]):
    """The events of one streaming run; ``aclose()`` it (or use ``async with``) to stop early and cancel the run."""

    def __init__(self, events: AsyncGenerator[StreamEvent, None]) -> None:
        self._events = events

    async def __anext__(self) -> StreamEvent:
        return await self._events.__anext__()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Disconnect, if the run is still going (the server then cancels it)."""
        await self._events.aclose()


class SessionOpener(Awaitable["AsyncClientSession"]):
    """What ``AsyncClient.session()`` returns: await it for the session, or enter it with ``async with``.

    Nothing is sent until then, so an opener that is never used leaves nothing behind.
    """

    def __init__(self, client: AsyncClient, call: Call[SessionInfo]) -> None:
        self._client = client
        self._call = call
        self._session: AsyncClientSession | None = None

    def __await__(self) -> Generator[Any, None, AsyncClientSession]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncClientSession:
        self._session = await self._open()
        return self._session

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _open(self) -> AsyncClientSession:
        return AsyncClientSession(self._client, (await self._client._send(self._call)).id)


class AsyncClientSession:
    """A session on the server, for asyncio; see ``ClientSession``. ``async with`` deletes it at the end."""

    def __init__(self, client: AsyncClient, session_id: str) -> None:
        self._client = client
        self._closed = False
        self.id = session_id

    def __repr__(self) -> str:
        return f"<AsyncClientSession {self.id}{' closed' if self._closed else ''}>"

    async def __aenter__(self) -> AsyncClientSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def execute(self, code: str, *, timeout: float | None = None,
                      on_event: AsyncEventCallback | None = None) -> ExecutionResult:
        """Run a cell; see ``AsyncClient.execute`` for ``on_event``. Cells of one session run one at a time."""
        call = calls.session_execute_call(self.id, code, timeout=timeout, stream=on_event is not None)
        return await (self._client._send(call) if on_event is None else self._client._run_streaming(call, on_event))

    def stream(self, code: str, *, timeout: float | None = None) -> AsyncEventStream:
        """Run a cell, yielding its ``StreamEvent`` objects; leaving early interrupts the cell (state is kept)."""
        return AsyncEventStream(self._client._events(calls.session_execute_call(self.id, code, timeout=timeout, stream=True)))

    async def run_command(self, cmd: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                    timeout: float | None = None, stdin: str | None = None) -> CommandResult:
        """Run ``/bin/sh -c cmd`` in the session's sandbox, on its files, taking its turn like a cell."""
        return await self._client._send(calls.command_call(cmd, session_id=self.id, cwd=cwd, env=env, timeout=timeout,
                                                          stdin=stdin))

    async def start_command(self, cmd: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                      timeout: float | None = None) -> str:
        """Start ``cmd`` in the background; returns its id for ``command``, ``write_stdin`` and ``kill_command``."""
        return await self._client._send(calls.start_command_call(self.id, cmd, cwd=cwd, env=env, timeout=timeout))

    async def commands(self) -> list[CommandResult]:
        """The session's commands: running ones, and the last finished ones."""
        return await self._client._send(calls.list_commands_call(self.id))

    async def command(self, command_id: str) -> CommandResult:
        """A command's state and output so far (a background one keeps its latest output)."""
        return await self._client._send(calls.get_command_call(self.id, command_id))

    async def write_stdin(self, command_id: str, data: str, *, eof: bool = False) -> None:
        """Write to a running background command's stdin (``eof``: then close it)."""
        await self._client._send(calls.command_stdin_call(self.id, command_id, data, eof))

    async def kill_command(self, command_id: str) -> CommandResult:
        """Kill a command and whatever it started; returns its final state."""
        return await self._client._send(calls.kill_command_call(self.id, command_id))

    async def interrupt(self) -> None:
        """Stop the running cell, if any (``KeyboardInterrupt`` inside it)."""
        await self._client._send(calls.interrupt_call(self.id))

    async def upload(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` in the workspace (relative; the server refuses paths that leave it)."""
        await self._client._send(calls.upload_call(self.id, path, data))

    async def download(self, path: str) -> bytes:
        """The bytes of ``path`` in the workspace."""
        return await self._client._send(calls.download_call(self.id, path))

    async def delete_file(self, path: str) -> None:
        """Delete ``path`` from the workspace."""
        await self._client._send(calls.delete_file_call(self.id, path))

    async def files(self) -> list[FileInfo]:
        """Every file in the workspace."""
        return await self._client._send(calls.files_call(self.id))

    async def notebook(self) -> dict[str, Any]:
        """The session's history as a Jupyter notebook (nbformat 4 JSON)."""
        return await self._client._send(calls.notebook_call(self.id))

    async def info(self) -> SessionInfo:
        """The session as the server sees it now."""
        return await self._client._send(calls.get_session_call(self.id))

    async def pause(self) -> SessionInfo:
        """Save the session's state and end its interpreter; files stay reachable. The next cell resumes it."""
        return await self._client._send(calls.pause_call(self.id))

    async def resume(self) -> SessionInfo:
        """Bring the interpreter back now, with the saved state."""
        return await self._client._send(calls.resume_call(self.id))

    async def fork(self) -> AsyncClientSession:
        """A new session with a copy of this one's files and saved state."""
        return AsyncClientSession(self._client, (await self._client._send(calls.fork_call(self.id))).id)

    async def archive(self) -> bytes:
        """The session as one archive (gzip tar, docs/sessions.md)."""
        return await self._client._send(calls.archive_call(self.id))

    async def close(self) -> None:
        """Delete the session and its sandbox on the server. Closing twice, or after it expired, is fine."""
        if self._closed:
            return
        try:
            await self._client._send(calls.delete_session_call(self.id))
        except NotFoundError:
            pass  # already gone (expired, or deleted elsewhere): the state we wanted
        self._closed = True
