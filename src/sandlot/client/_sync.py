"""The blocking face: ``Client``, ``ClientSession`` and ``EventStream``.

Only I/O lives here; every request and every answer is built and read in
``_base``. ``AsyncClient`` in ``_async`` is the same, line for line, with ``await``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import httpx

from .._errors import ClosedError, NotFoundError
from .._models import CommandResult, ExecutionResult
from . import _base as calls
from ._base import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, BaseClient, BatchItem, Call
from ._errors import error_from_response, transport_errors
from ._sse import ServerSentEvent, SSEDecoder, ended_early, to_batch_result, to_stream_event
from ._types import EventCallback, FileInfo, SessionInfo, StreamEvent

T = TypeVar("T")


class Client(BaseClient):
    """A blocking client for a sandlot server.

    ``with Client() as client: client.execute("print(1)")``. The API key defaults to
    ``$SANDLOT_API_KEY``; ``timeout`` is how long to wait for an answer, in seconds
    (``None``: forever), stretched for a run that asks for a longer timeout of its own.
    ``transport`` is any httpx transport (``httpx.MockTransport`` in tests, a proxy, a socket).
    Safe to share between threads, as ``httpx.Client`` is.
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, api_key: str | None = None, timeout: float | None = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(base_url, api_key, timeout)
        self._http = httpx.Client(base_url=self.base_url, headers=self._default_headers(), transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections; the client cannot be used afterwards. Sessions on the server stay open."""
        self._http.close()

    # ---- runs ---------------------------------------------------------------------------

    def execute(self, code: str, *, timeout: float | None = None, files: Mapping[str, bytes | str] | None = None,
                env: Mapping[str, str] | None = None, on_event: EventCallback | None = None,
                environment: str | None = None, network: calls.Network = None) -> ExecutionResult:
        """Run ``code`` once in a fresh sandbox and return its result.

        ``files`` (path -> bytes) are placed in the workspace first; ``env`` is added to the
        environment. With ``on_event``, the run streams and ``on_event(name, data)`` is called for
        each ``StreamEvent`` as it arrives (an exception from it cancels the run). A failure of
        the user's code is data (``status == "error"``), never an exception. ``network``: True for all the
        network the server allows, or a list of destinations (docs/egress.md); the result lists the connections.
        """
        call = calls.execute_call(code, timeout=timeout, files=files, env=env, stream=on_event is not None,
                                  environment=environment, network=network)
        return self._send(call) if on_event is None else self._run_streaming(call, on_event)

    def stream(self, code: str, *, timeout: float | None = None, files: Mapping[str, bytes | str] | None = None,
               env: Mapping[str, str] | None = None, environment: str | None = None) -> EventStream:
        """Run ``code`` once, yielding ``StreamEvent`` objects as they happen; the last is ``done``.

        The request goes out when iteration starts. Leaving early (``close()`` or a ``with``
        block) disconnects, which cancels the run.
        """
        return EventStream(self._events(calls.execute_call(code, timeout=timeout, files=files, env=env, stream=True,
                                                       environment=environment)))

    def run_command(self, cmd: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                    timeout: float | None = None, stdin: str | None = None) -> CommandResult:
        """Run ``/bin/sh -c cmd`` once in a fresh sandbox; a non-zero exit is data (``status == "error"``)."""
        return self._send(calls.command_call(cmd, session_id=None, cwd=cwd, env=env, timeout=timeout, stdin=stdin))

    def batch(self, items: Sequence[BatchItem]) -> list[ExecutionResult]:
        """Run many items in one round trip; results come back in item order.

        An item is code, or a mapping with ``code`` and optionally ``session_id`` and ``timeout``.
        """
        return self._send(calls.batch_call(items))

    def batch_stream(self, items: Sequence[BatchItem]) -> Generator[tuple[int, ExecutionResult], None, None]:
        """``batch``, streamed: ``(index, result)`` in item order, each as soon as it and every item before it
        are in. Closing the generator early disconnects (the server cancels the items without a session)."""
        with contextlib.closing(self._raw_events(calls.batch_call(items, stream=True))) as raws:
            for raw in raws:
                result = to_batch_result(raw)
                if result is not None:
                    yield result
                elif raw.event == "done":
                    return
        raise ended_early(self.base_url)

    # ---- sessions -----------------------------------------------------------------------

    def session(self, *, timeout: float | None = None, idle_timeout: float | None = None,
                env: Mapping[str, str] | None = None, environment: str | None = None,
                network: calls.Network = None) -> ClientSession:
        """Create a stateful session; use it as a context manager so it is deleted at the end (``network``: as
        for ``execute``, for all its cells)."""
        info = self._send(calls.create_session_call(timeout=timeout, idle_timeout=idle_timeout, env=env,
                                                    environment=environment, network=network))
        return ClientSession(self, info.id)

    def get_session(self, session_id: str) -> ClientSession:
        """Attach to an existing session (``NotFoundError`` if there is none by that id for this key)."""
        return ClientSession(self, self._send(calls.get_session_call(session_id)).id)

    def list_sessions(self, state: str | None = None) -> list[SessionInfo]:
        """This API key's sessions (``state``: only the ``running`` or the ``paused`` ones)."""
        return self._send(calls.list_sessions_call(state))

    def import_session(self, archive: bytes) -> ClientSession:
        """A new session from an archive made by ``ClientSession.archive`` (here or on another server)."""
        return ClientSession(self, self._send(calls.import_call(archive)).id)

    def environments(self, *, distributions: bool = False) -> list[dict[str, Any]]:
        """The environments runs and sessions may name (``GET /v1/environments``): name, python, preload,
        default, ...; with ``distributions``, what each has installed."""
        return self._send(calls.environments_call(distributions))

    def health(self) -> dict[str, Any]:
        """The server's ``/healthz`` body; ``UnavailableError`` while it is draining."""
        return self._send(calls.health_call())

    # ---- I/O ----------------------------------------------------------------------------

    def _send(self, call: Call[T]) -> T:
        self._check_open()
        with transport_errors(self.base_url):
            response = self._http.send(self._request(self._http, call))
        return self._finish(call, response)

    def _raw_events(self, call: Call[Any]) -> Generator[ServerSentEvent, None, None]:
        """The events of a streamed call as they arrive; closing this early disconnects, and the server cancels
        the work."""
        self._check_open()
        with transport_errors(self.base_url):
            response = self._http.send(self._request(self._http, call), stream=True)
            try:
                if not response.is_success:
                    response.read()
                    raise error_from_response(response)
                response.encoding = "utf-8"  # what SSE always is, whatever the headers say
                decoder = SSEDecoder()
                for line in response.iter_lines():
                    raw = decoder.decode(line)
                    if raw is not None:
                        yield raw
            finally:
                response.close()

    def _events(self, call: Call[ExecutionResult]) -> Generator[StreamEvent, None, None]:
        with contextlib.closing(self._raw_events(call)) as raws:
            for raw in raws:
                event = to_stream_event(raw)
                yield event
                if event.event == "done":
                    return
        raise ended_early(self.base_url)

    def _run_streaming(self, call: Call[ExecutionResult], on_event: EventCallback) -> ExecutionResult:
        last: StreamEvent | None = None
        with EventStream(self._events(call)) as events:
            for last in events:
                on_event(last.event, last.data)
        # _events ends right after "done", or raises: the last event holds the result.
        return cast(ExecutionResult, cast(StreamEvent, last).data)

    def _check_open(self) -> None:
        if self._http.is_closed:
            raise ClosedError("the client is closed")


class EventStream(Iterator[StreamEvent]):
    """The events of one streaming run; close it (or use ``with``) to stop early and cancel the run."""

    def __init__(self, events: Generator[StreamEvent, None, None]) -> None:
        self._events = events

    def __next__(self) -> StreamEvent:
        return next(self._events)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect, if the run is still going (the server then cancels it)."""
        self._events.close()


class ClientSession:
    """A session on the server: variables, imports and files persist between ``execute`` calls.

    A context manager: leaving the block deletes the session and its sandbox on the server.
    """

    def __init__(self, client: Client, session_id: str) -> None:
        self._client = client
        self._closed = False
        self.id = session_id

    def __repr__(self) -> str:
        return f"<ClientSession {self.id}{' closed' if self._closed else ''}>"

    def __enter__(self) -> ClientSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def execute(self, code: str, *, timeout: float | None = None, on_event: EventCallback | None = None) -> ExecutionResult:
        """Run a cell; see ``Client.execute`` for ``on_event``. Cells of one session run one at a time."""
        call = calls.session_execute_call(self.id, code, timeout=timeout, stream=on_event is not None)
        return self._client._send(call) if on_event is None else self._client._run_streaming(call, on_event)

    def stream(self, code: str, *, timeout: float | None = None) -> EventStream:
        """Run a cell, yielding its ``StreamEvent`` objects; leaving early interrupts the cell (state is kept)."""
        return EventStream(self._client._events(calls.session_execute_call(self.id, code, timeout=timeout, stream=True)))

    def run_command(self, cmd: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                    timeout: float | None = None, stdin: str | None = None) -> CommandResult:
        """Run ``/bin/sh -c cmd`` in the session's sandbox, on its files, taking its turn like a cell."""
        return self._client._send(calls.command_call(cmd, session_id=self.id, cwd=cwd, env=env, timeout=timeout,
                                                          stdin=stdin))

    def start_command(self, cmd: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                      timeout: float | None = None) -> str:
        """Start ``cmd`` in the background; returns its id for ``command``, ``write_stdin`` and ``kill_command``."""
        return self._client._send(calls.start_command_call(self.id, cmd, cwd=cwd, env=env, timeout=timeout))

    def commands(self) -> list[CommandResult]:
        """The session's commands: running ones, and the last finished ones."""
        return self._client._send(calls.list_commands_call(self.id))

    def command(self, command_id: str) -> CommandResult:
        """A command's state and output so far (a background one keeps its latest output)."""
        return self._client._send(calls.get_command_call(self.id, command_id))

    def write_stdin(self, command_id: str, data: str, *, eof: bool = False) -> None:
        """Write to a running background command's stdin (``eof``: then close it)."""
        self._client._send(calls.command_stdin_call(self.id, command_id, data, eof))

    def kill_command(self, command_id: str) -> CommandResult:
        """Kill a command and whatever it started; returns its final state."""
        return self._client._send(calls.kill_command_call(self.id, command_id))

    def interrupt(self) -> None:
        """Stop the running cell, if any (``KeyboardInterrupt`` inside it); safe to call from another thread."""
        self._client._send(calls.interrupt_call(self.id))

    def upload(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` in the workspace (relative; the server refuses paths that leave it)."""
        self._client._send(calls.upload_call(self.id, path, data))

    def download(self, path: str) -> bytes:
        """The bytes of ``path`` in the workspace."""
        return self._client._send(calls.download_call(self.id, path))

    def delete_file(self, path: str) -> None:
        """Delete ``path`` from the workspace."""
        self._client._send(calls.delete_file_call(self.id, path))

    def files(self) -> list[FileInfo]:
        """Every file in the workspace."""
        return self._client._send(calls.files_call(self.id))

    def notebook(self) -> dict[str, Any]:
        """The session's history as a Jupyter notebook (nbformat 4 JSON)."""
        return self._client._send(calls.notebook_call(self.id))

    def info(self) -> SessionInfo:
        """The session as the server sees it now."""
        return self._client._send(calls.get_session_call(self.id))

    def pause(self) -> SessionInfo:
        """Save the session's state and end its interpreter; files stay reachable. The next cell resumes it."""
        return self._client._send(calls.pause_call(self.id))

    def resume(self) -> SessionInfo:
        """Bring the interpreter back now, with the saved state (the next result's ``resumed`` says what came back)."""
        return self._client._send(calls.resume_call(self.id))

    def fork(self) -> ClientSession:
        """A new session with a copy of this one's files and saved state (paused; its first cell resumes it)."""
        return ClientSession(self._client, self._client._send(calls.fork_call(self.id)).id)

    def archive(self) -> bytes:
        """The session as one archive (gzip tar, docs/sessions.md), for ``Client.import_session``."""
        return self._client._send(calls.archive_call(self.id))

    def close(self) -> None:
        """Delete the session and its sandbox on the server. Closing twice, or after it expired, is fine."""
        if self._closed:
            return
        try:
            self._client._send(calls.delete_session_call(self.id))
        except NotFoundError:
            pass  # already gone (expired, or deleted elsewhere): the state we wanted
        self._closed = True
