"""What both faces share: configuration, and every call as data.

Each API operation is a pure function that returns a ``Call``: the method,
path and body to send, and how to read a successful answer. ``BaseClient``
holds the configuration and turns any answer into a result or an exception.
``Client`` and ``AsyncClient`` only do the I/O in between, so the two faces
cannot drift apart.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from .. import __version__
from .._models import CommandResult, ExecutionResult
from ._errors import error_from_response, unreadable
from ._sse import SSE_MEDIA_TYPE
from ._types import FileInfo, SessionInfo

DEFAULT_BASE_URL = "http://127.0.0.1:8765"
DEFAULT_TIMEOUT = 60.0
API_KEY_ENV = "SANDLOT_API_KEY"
# A request for a run with its own, longer timeout waits that long plus this much for the
# sandbox to start and the answer to come back, rather than giving up at the client's timeout.
RUN_TIMEOUT_GRACE = 10.0

T = TypeVar("T")
BatchItem = str | Mapping[str, Any]

_results: TypeAdapter[list[ExecutionResult]] = TypeAdapter(list[ExecutionResult])
_sessions: TypeAdapter[list[SessionInfo]] = TypeAdapter(list[SessionInfo])
_files: TypeAdapter[list[FileInfo]] = TypeAdapter(list[FileInfo])
_result_adapter: TypeAdapter[ExecutionResult] = TypeAdapter(ExecutionResult)
_session_adapter: TypeAdapter[SessionInfo] = TypeAdapter(SessionInfo)
_command_adapter: TypeAdapter[CommandResult] = TypeAdapter(CommandResult)
_commands: TypeAdapter[list[CommandResult]] = TypeAdapter(list[CommandResult])
_objects: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(list[dict[str, Any]])


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP exchange, described without doing it."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    content: bytes | None = None
    run_timeout: float | None = None  # the run's own limit, if the caller set one
    stream: bool = False  # answered with Server-Sent Events


class BaseClient:
    """Configuration and answer handling shared by ``Client`` and ``AsyncClient``."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url} auth={'yes' if self.api_key else 'no'}>"

    def _default_headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"sandlot-client/{__version__}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        headers = {"Accept": SSE_MEDIA_TYPE} if call.stream else {}
        if call.content is not None:
            headers["Content-Type"] = "application/octet-stream"
        return http.build_request(call.method, call.path, json=call.json, content=call.content, headers=headers,
                                  timeout=self._timeout_for(call))

    def _timeout_for(self, call: Call[Any]) -> httpx.Timeout:
        if self.timeout is None:
            return httpx.Timeout(None)
        read = self.timeout
        if call.run_timeout is not None:
            read = max(read, call.run_timeout + RUN_TIMEOUT_GRACE)
        return httpx.Timeout(self.timeout, read=read)

    def _finish(self, call: Call[T], response: httpx.Response) -> T:
        """The result of a finished exchange, or the exception its answer calls for."""
        if not response.is_success:
            raise error_from_response(response)
        return call.parse(response)


# ---- reading answers ------------------------------------------------------------------

def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise unreadable("an answer", exc) from exc


def _validated(adapter: TypeAdapter[T], value: Any, what: str) -> T:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise unreadable(what, exc) from exc


def _field(response: httpx.Response, name: str) -> Any:
    body = _json(response)
    if not isinstance(body, dict) or name not in body:
        raise unreadable(f"an answer without {name!r}")
    return body[name]


def _result(response: httpx.Response) -> ExecutionResult:
    return _validated(_result_adapter, _json(response), "an execution result")


def _command(response: httpx.Response) -> CommandResult:
    return _validated(_command_adapter, _json(response), "a command result")


def _session(response: httpx.Response) -> SessionInfo:
    return _validated(_session_adapter, _json(response), "a session")


def _object(response: httpx.Response) -> dict[str, Any]:
    body = _json(response)
    if not isinstance(body, dict):
        raise unreadable("an answer that is not a JSON object")
    return body


def _nothing(response: httpx.Response) -> None:
    return None


def _bytes(response: httpx.Response) -> bytes:
    return response.content


# ---- the calls ------------------------------------------------------------------------

def quote_path(path: str) -> str:
    """URL-quote a workspace path one segment at a time, without normalizing it.

    ``/`` stays a separator and everything else is escaped, so ``a b#c.txt`` works.
    Dot segments are escaped too: httpx would otherwise resolve ``a/../b`` to ``b``
    before sending, and deciding what ``..`` means is the server's job (it refuses it).
    """
    return "/".join(quote(segment, safe="") if segment not in (".", "..") else segment.replace(".", "%2E")
                    for segment in path.split("/"))


def _session_path(session_id: str, rest: str = "") -> str:
    return f"/v1/sessions/{quote(session_id, safe='')}{rest}"


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


Network = Sequence[str] | bool | None
"""A run's or session's network (docs/egress.md): None or False, none; True, all the server allows; a list of
destinations, those (within what the server allows)."""


def network_body(network: Network) -> dict[str, Any] | None:
    if network is None or network is False:
        return None
    if network is True:
        return {}
    if isinstance(network, str):
        raise TypeError("network is a list of destinations, not one string")
    return {"allow": list(network)}


def execute_call(code: str, *, timeout: float | None, files: Mapping[str, bytes | str] | None,
                 env: Mapping[str, str] | None, stream: bool, environment: str | None = None,
                 network: Network = None) -> Call[ExecutionResult]:
    uploads = None
    if files is not None:
        uploads = [{"path": path, "content": base64.b64encode(data.encode() if isinstance(data, str) else data).decode()}
                   for path, data in files.items()]
    body = _drop_none({"code": code, "timeout": timeout, "files": uploads, "env": dict(env) if env is not None else None,
                       "environment": environment, "network": network_body(network)})
    if stream:
        body["stream"] = True
    return Call("POST", "/v1/execute", _result, json=body, run_timeout=timeout, stream=stream)


def session_execute_call(session_id: str, code: str, *, timeout: float | None, stream: bool) -> Call[ExecutionResult]:
    body = _drop_none({"code": code, "timeout": timeout})
    if stream:
        body["stream"] = True
    return Call("POST", _session_path(session_id, "/execute"), _result, json=body, run_timeout=timeout, stream=stream)


def command_call(cmd: str, *, session_id: str | None, cwd: str | None, env: Mapping[str, str] | None,
                 timeout: float | None, stdin: str | None) -> Call[CommandResult]:
    """``/bin/sh -c cmd`` to its end: once in a fresh sandbox, or in a session's."""
    body = _drop_none({"cmd": cmd, "cwd": cwd, "env": dict(env) if env is not None else None, "timeout": timeout,
                       "stdin": stdin})
    path = "/v1/commands" if session_id is None else _session_path(session_id, "/commands")
    return Call("POST", path, _command, json=body, run_timeout=timeout)


def start_command_call(session_id: str, cmd: str, *, cwd: str | None, env: Mapping[str, str] | None,
                       timeout: float | None) -> Call[str]:
    body = _drop_none({"cmd": cmd, "cwd": cwd, "env": dict(env) if env is not None else None, "timeout": timeout,
                       "background": True})
    return Call("POST", _session_path(session_id, "/commands"), lambda r: str(_field(r, "id")), json=body)


def get_command_call(session_id: str, command_id: str) -> Call[CommandResult]:
    return Call("GET", _session_path(session_id, f"/commands/{quote(command_id, safe='')}"), _command)


def list_commands_call(session_id: str) -> Call[list[CommandResult]]:
    return Call("GET", _session_path(session_id, "/commands"),
                lambda r: _validated(_commands, _field(r, "commands"), "commands"))


def command_stdin_call(session_id: str, command_id: str, data: str, eof: bool) -> Call[None]:
    return Call("POST", _session_path(session_id, f"/commands/{quote(command_id, safe='')}/stdin"), _nothing,
                json={"data": data, "eof": eof})


def kill_command_call(session_id: str, command_id: str) -> Call[CommandResult]:
    return Call("DELETE", _session_path(session_id, f"/commands/{quote(command_id, safe='')}"), _command)


def batch_call(items: Sequence[BatchItem], stream: bool = False) -> Call[list[ExecutionResult]]:
    body = [{"code": item} if isinstance(item, str) else dict(item) for item in items]
    timeouts = [float(t) for item in body if isinstance(t := item.get("timeout"), int | float)]
    # Items run in parallel, but one session's items run in turn: the longest is a floor, not a bound.
    longest = max(timeouts, default=None)
    return Call("POST", "/v1/batch", lambda r: _validated(_results, _field(r, "results"), "batch results"),
                json={"items": body, **({"stream": True} if stream else {})}, run_timeout=longest)


def create_session_call(*, timeout: float | None, idle_timeout: float | None,
                        env: Mapping[str, str] | None, environment: str | None = None,
                        network: Network = None) -> Call[SessionInfo]:
    body = _drop_none({"timeout": timeout, "idle_timeout": idle_timeout, "env": dict(env) if env is not None else None,
                       "environment": environment, "network": network_body(network)})
    return Call("POST", "/v1/sessions", _session, json=body)


def get_session_call(session_id: str) -> Call[SessionInfo]:
    return Call("GET", _session_path(session_id), _session)


def list_sessions_call(state: str | None = None) -> Call[list[SessionInfo]]:
    path = "/v1/sessions" if state is None else f"/v1/sessions?state={quote_path(state)}"
    return Call("GET", path, lambda r: _validated(_sessions, _field(r, "sessions"), "sessions"))


def delete_session_call(session_id: str) -> Call[None]:
    return Call("DELETE", _session_path(session_id), _nothing)


def interrupt_call(session_id: str) -> Call[None]:
    return Call("POST", _session_path(session_id, "/interrupt"), _nothing)


def upload_call(session_id: str, path: str, data: bytes) -> Call[None]:
    return Call("PUT", _session_path(session_id, f"/files/{quote_path(path)}"), _nothing, content=bytes(data))


def download_call(session_id: str, path: str) -> Call[bytes]:
    return Call("GET", _session_path(session_id, f"/files/{quote_path(path)}"), _bytes)


def delete_file_call(session_id: str, path: str) -> Call[None]:
    return Call("DELETE", _session_path(session_id, f"/files/{quote_path(path)}"), _nothing)


def files_call(session_id: str) -> Call[list[FileInfo]]:
    return Call("GET", _session_path(session_id, "/files"), lambda r: _validated(_files, _field(r, "files"), "files"))


def notebook_call(session_id: str) -> Call[dict[str, Any]]:
    return Call("GET", _session_path(session_id, "/notebook"), _object)


def pause_call(session_id: str) -> Call[SessionInfo]:
    return Call("POST", _session_path(session_id, "/pause"), _session)


def resume_call(session_id: str) -> Call[SessionInfo]:
    return Call("POST", _session_path(session_id, "/resume"), _session)


def fork_call(session_id: str) -> Call[SessionInfo]:
    return Call("POST", _session_path(session_id, "/fork"), _session)


def archive_call(session_id: str) -> Call[bytes]:
    return Call("GET", _session_path(session_id, "/archive"), _bytes)


def import_call(archive: bytes) -> Call[SessionInfo]:
    return Call("POST", "/v1/sessions/import", _session, content=bytes(archive))


def environments_call(distributions: bool) -> Call[list[dict[str, Any]]]:
    path = "/v1/environments?distributions=true" if distributions else "/v1/environments"
    return Call("GET", path, lambda r: _validated(_objects, _field(r, "environments"), "environments"))


def health_call() -> Call[dict[str, Any]]:
    return Call("GET", "/healthz", _object)
