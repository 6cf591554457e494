"""The MCP tools: their descriptions and schemas (written for models), and what each one does.

Built on the SDK's low-level ``Server``: the input schemas are written out by
hand, so a model sees exactly the contract below (no ``anyOf`` with null, no
generated titles), and every result is a ``CallToolResult`` we build. Anything
that goes wrong with a call (an unknown session, a bad path, a quota) is a
tool result with ``isError`` and a message saying what to do, never a protocol
error; so is a run whose code failed, which also carries its full result.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ImageContent,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
    ToolAnnotations,
)
from pydantic import BaseModel, ConfigDict, ValidationError

from .. import __version__
from .._config import MiB
from .._errors import AuthenticationError, CapacityError, ClosedError, InvalidRequestError, NotFoundError, SandlotError, TooLargeError
from .._models import CommandResult, ExecutionResult
from ..engine import Engine, Session
from ._results import execution_result, text

if TYPE_CHECKING:
    from ..server.state import ServerState

log = logging.getLogger("sandlot.mcp")

DEFAULT_MAX_FILE_BYTES = 64 * MiB
LOCAL = "local"
"""The one principal of a stdio server: whoever started it."""


@dataclass(frozen=True)
class Caller:
    """Who made a tool call: the API key's principal, and the MCP session it came on (streamable
    HTTP with the session handshake), if any. Sessions opened on an MCP session close with it."""

    principal: str
    client: str | None = None


class SessionBook:
    """Which sandlot sessions each MCP client opened through these tools."""

    def __init__(self) -> None:
        self._owner: dict[str, Caller] = {}

    def add(self, caller: Caller, session_id: str) -> None:
        self._owner[session_id] = caller

    def owner(self, session_id: str) -> Caller | None:
        return self._owner.get(session_id)

    def forget(self, session_id: str) -> None:
        """For ``engine.on_session_closed``: however a session ended, stop tracking it."""
        self._owner.pop(session_id, None)

    def opened_by(self, principal: str, client: str) -> list[str]:
        return [sid for sid, caller in self._owner.items() if caller == Caller(principal, client)]


# ---- arguments (what the schemas below promise, checked) -----------------------------

class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunArgs(_Args):
    code: str
    timeout: float | None = None


class CreateArgs(_Args):
    idle_timeout: float | None = None


class CellArgs(_Args):
    session_id: str
    code: str
    timeout: float | None = None


class CommandArgs(_Args):
    session_id: str
    command: str
    timeout: float | None = None


class SessionArgs(_Args):
    session_id: str


class UploadArgs(_Args):
    session_id: str
    path: str
    content: str
    encoding: Literal["text", "base64"] = "text"


class FileArgs(_Args):
    session_id: str
    path: str


# ---- structured results ----------------------------------------------------------------

class SessionOut(BaseModel):
    id: str
    created_at: str
    expires_at: str
    execution_count: int


class FileOut(BaseModel):
    path: str
    size: int
    modified_at: str


class FileListOut(BaseModel):
    files: list[FileOut]


class UploadOut(BaseModel):
    path: str
    size: int


class DownloadOut(BaseModel):
    path: str
    size: int
    encoding: Literal["text", "base64"]
    content: str


class ClosedOut(BaseModel):
    id: str
    closed: bool


def _object(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


SESSION_ID = {"type": "string", "description": "The session's id, as create_session returned it (ses_...)."}
PATH = {"type": "string", "description": "A path relative to the session's working directory, e.g. 'data.csv' or "
                                         "'out/plot.png'. Absolute paths and '..' are refused."}


def _size(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n:g} bytes"


class SandlotTools:
    """The tools over one engine. ``state`` is the main server's, when serving ``/mcp`` there: then
    calls are per API key, count against its quotas, and show up in its metrics."""

    def __init__(self, engine: Engine, caller: Callable[[ServerRequestContext[Any, Any]], Caller], *,
                 state: ServerState | None = None) -> None:
        self.engine = engine
        self.book = SessionBook()
        self._caller = caller
        self._state = state
        self.max_file_bytes = state.config.max_file_bytes if state is not None else DEFAULT_MAX_FILE_BYTES
        engine.on_session_closed.append(self.book.forget)
        self._tools = self._describe()
        self._handlers: dict[str, Callable[[Caller, dict[str, Any]], Awaitable[CallToolResult]]] = {
            "run_python": self.run_python, "create_session": self.create_session, "run_cell": self.run_cell,
            "run_command": self.run_command, "upload_file": self.upload_file, "download_file": self.download_file,
            "list_files": self.list_files, "close_session": self.close_session,
        }

    # ---- the MCP server --------------------------------------------------------------

    def server(self) -> Server[Any]:
        return Server("sandlot", version=__version__, title="sandlot", instructions=self._instructions(),
                      on_list_tools=self._list_tools, on_call_tool=self._call_tool,
                      get_tool_input_schema=self._input_schema)

    async def _list_tools(self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None) -> ListToolsResult:
        return ListToolsResult(tools=list(self._tools.values()))

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        tool = self._tools.get(name)
        return tool.input_schema if tool is not None else None

    async def _call_tool(self, ctx: ServerRequestContext[Any, Any], params: CallToolRequestParams) -> CallToolResult:
        handler = self._handlers.get(params.name)
        if handler is None:
            raise MCPError(code=INVALID_PARAMS, message=f"unknown tool {params.name!r}; this server has {', '.join(self._tools)}")
        try:
            return await handler(self._caller(ctx), params.arguments or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5])
            return tool_error(f"invalid arguments for {params.name}: {problems}")
        except CapacityError as exc:
            return tool_error(f"{exc} (try again in about {max(1, round(exc.retry_after))} s)")
        except SandlotError as exc:
            if exc.http_status >= 500:
                log.error("mcp tool %s failed: %s", params.name, exc)
            return tool_error(str(exc))
        except Exception:
            log.exception("mcp tool %s failed unexpectedly", params.name)
            return tool_error("sandlot failed to carry out this call; the error was logged on the server")

    # ---- the tools ---------------------------------------------------------------------

    async def run_python(self, caller: Caller, arguments: dict[str, Any]) -> CallToolResult:
        args = RunArgs.model_validate(arguments)
        with self._run_slot(caller):
            result = await self.engine.execute(args.code, timeout=args.timeout, tenant=caller.principal)
        self._record("execute", result)
        return execution_result(result)

    async def create_session(self, caller: Caller, arguments: dict[str, Any]) -> CallToolResult:
        args = CreateArgs.model_validate(arguments)
        with self._session_slot(caller):
            session = await self.engine.create_session(idle_timeout=args.idle_timeout, owner=caller.principal)
            self.book.add(caller, session.id)
            if self._state is not None:
                self._state.quotas.add_session(caller.principal, session.id)
        info = SessionOut.model_validate(session.info())
        return CallToolResult(
            content=[text(f"Created session {session.id}. Pass session_id=\"{session.id}\" to run_cell, upload_file, "
                          f"list_files, download_file and close_session. After {session.idle_timeout:g} s without a call it "
                          f"is paused (its variables saved, its files kept) and the next call resumes it.")],
            structured_content=info.model_dump(mode="json"))

    async def run_cell(self, caller: Caller, arguments: dict[str, Any]) -> CallToolResult:
        args = CellArgs.model_validate(arguments)
        session = self._session(caller, args.session_id)
        with self._run_slot(caller):
            try:
                result = await session.execute(args.code, timeout=args.timeout)
            except ClosedError:
                raise self._gone(args.session_id) from None
        self._record("session", result, session.id)
        return execution_result(result)

    async def run_command(self, caller: Caller, arguments: dict[str, Any]) -> CallToolResult:
        args = CommandArgs.model_validate(arguments)
        session = self._session(caller, args.session_id)
        with self._run_slot(caller):
            try:
                result = await session.run_command(args.command, timeout=args.timeout)
            except ClosedError:
                raise self._gone(args.session_id) from None
        shown = [f"exit code {result.exit_code}" if result.exit_code is not None else f"{result.status}: {result.error}"]
        for name, value in (("stdout", result.stdout), ("stderr", result.stderr)):
            if value:
                shown.append(f"{name}:\n{value}")
        if result.truncated:
            shown.append("(the output was over the limit; the rest was dropped)")
        return CallToolResult(content=[text("\n".join(shown))], structured_content=result.model_dump(mode="json"),
                              is_error=result.status != "ok")

    async def upload_file(self, caller: Caller, arguments: dict[str, Any]) -> CallToolResult:
        args = UploadArgs.model_validate(arguments)
        session = self._session(caller, args.session_id)
        if args.encoding == "base64":
            try:
                data = base64.b64decode(args.content, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidRequestError("content is not valid base64 (with encoding='base64', pass the file's "
                                          "bytes base64-encoded, without line breaks)") from None
        else:
            data = args.content.encode("utf-8")
        if len(data) > self.max_file_bytes:
            raise TooLargeError(f"the file is {len(data)} bytes, over the limit of {self.max_file_bytes}")
        await asyncio.to_thread((await session.open_workspace()).write, args.path, data)
        out = UploadOut(path=args.path, size=len(data))
        return CallToolResult(content=[text(f"Wrote {len(data)} bytes to {args.path} in session {session.id}; "
                                            f"its code can open({args.path!r}).")],
                              structured_content=out.model_dump(mode="json"))

    async def download_file(self, caller: Caller, arguments: dict[str, Any]) -> CallToolResult:
        args = FileArgs.model_validate(arguments)
        session = self._session(caller, args.session_id)
        data = await asyncio.to_thread((await session.open_workspace()).read, args.path, self.max_file_bytes)
        image = image_type(data)
        content: list[TextContent | ImageContent]
        if image is not None:
            encoded = base64.b64encode(data).decode("ascii")
            out = DownloadOut(path=args.path, size=len(data), encoding="base64", content=encoded)
            content = [text(f"{args.path}: {len(data)} bytes, {image}"),
                       ImageContent(type="image", data=encoded, mime_type=image)]
        else:
            try:
                out = DownloadOut(path=args.path, size=len(data), encoding="text", content=data.decode("utf-8"))
                content = [text(out.content if data else f"{args.path} is empty")]
            except UnicodeDecodeError:
                encoded = base64.b64encode(data).decode("ascii")
                out = DownloadOut(path=args.path, size=len(data), encoding="base64", content=encoded)
                content = [text(f"{args.path} is binary ({len(data)} bytes); base64-encoded:\n{encoded}")]
        return CallToolResult(content=list(content), structured_content=out.model_dump(mode="json"))

    async def list_files(self, caller: Caller, arguments: dict[str, Any]) -> CallToolResult:
        args = SessionArgs.model_validate(arguments)
        session = self._session(caller, args.session_id)
        files = await asyncio.to_thread((await session.open_workspace()).list_files)
        out = FileListOut(files=[FileOut(path=f.path, size=f.size, modified_at=datetime.fromtimestamp(f.modified_at, UTC)
                                         .isoformat()) for f in files])
        if files:
            listing = f"{len(files)} file(s) in session {session.id}:\n" + "\n".join(
                f"{f.path}  ({f.size} bytes)" for f in files)
        else:
            listing = f"Session {session.id}'s working directory has no files."
        return CallToolResult(content=[text(listing)], structured_content=out.model_dump(mode="json"))

    async def close_session(self, caller: Caller, arguments: dict[str, Any]) -> CallToolResult:
        args = SessionArgs.model_validate(arguments)
        session = self._session(caller, args.session_id)
        try:
            await self.engine.close_session(session.id)
        except NotFoundError:
            raise self._gone(session.id) from None
        return CallToolResult(content=[text(f"Closed session {session.id}: its interpreter and files are gone.")],
                              structured_content=ClosedOut(id=session.id, closed=True).model_dump(mode="json"))

    # ---- cleanup ---------------------------------------------------------------------

    async def client_gone(self, principal: str, client: str) -> None:
        """An MCP session ended (the client said so, or it expired): close the sessions it opened."""
        for session_id in self.book.opened_by(principal, client):
            try:
                await self.engine.close_session(session_id)
            except NotFoundError:
                self.book.forget(session_id)
            except ClosedError:
                return  # the engine is shutting down, and closes everything itself
            else:
                log.info("closed session %s: the MCP session that opened it ended", session_id)

    # ---- helpers ---------------------------------------------------------------------

    def _session(self, caller: Caller, session_id: str) -> Session:
        if self._state is not None:
            owned = self._state.quotas.owns(caller.principal, session_id)
        else:
            owner = self.book.owner(session_id)
            owned = owner is not None and owner.principal == caller.principal
        if not owned:
            raise self._gone(session_id)
        try:
            return self.engine.get_session(session_id)
        except NotFoundError:
            raise self._gone(session_id) from None

    def _gone(self, session_id: str) -> NotFoundError:
        return NotFoundError(f"no session {session_id!r}: it was closed or idled out (or never existed); "
                             "start a new one with create_session")

    @contextmanager
    def _run_slot(self, caller: Caller) -> Iterator[None]:
        if self._state is None:
            yield
            return
        with self._state.quotas.run(caller.principal):
            yield

    @contextmanager
    def _session_slot(self, caller: Caller) -> Iterator[None]:
        if self._state is None:
            yield
            return
        with self._state.quotas.new_session(caller.principal):
            yield

    def _record(self, kind: str, result: ExecutionResult, session_id: str | None = None) -> None:
        if self._state is None:
            return
        from ..server.logs import log_run

        self._state.metrics.record_run(kind, result.status, result.duration_ms, result.truncated)
        log_run(kind, result.id, result.status, result.duration_ms, session_id)

    # ---- what models read ------------------------------------------------------------

    def _facts(self) -> dict[str, str]:
        config = self.engine.config
        preload = ", ".join(config.preload)
        return {
            "timeout": f"{config.limits.timeout:g}", "max_timeout": f"{config.max_limits.timeout:g}",
            "memory": _size(config.limits.memory), "output": _size(config.limits.output_size),
            "idle": f"{config.session_idle_timeout:g}", "lifetime": f"{config.session_max_lifetime / 3600:g}",
            "files": _size(self.max_file_bytes),
            "packages": f"the standard library and the Python packages installed on the server ({preload} are "
                        "imported in advance, so importing them is instant)" if preload else
                        "the standard library and the Python packages installed on the server",
        }

    def _instructions(self) -> str:
        f = self._facts()
        return (
            "sandlot runs Python 3 in isolated sandboxes. Use run_python for a one-off computation. For work in "
            "steps (load data, then explore it), call create_session once and then run_cell as often as needed: "
            "variables, imports and files persist in a session, like a notebook. To see a value, print() it or end "
            "the code with an expression; matplotlib figures come back as images. The sandboxes have no network "
            f"access: use {f['packages']}, and bring data in with upload_file. Close sessions you are done with "
            f"(close_session); an unused session closes by itself after {f['idle']} s."
        )

    def _describe(self) -> dict[str, Tool]:
        f = self._facts()
        code = {"type": "string", "description": "Python 3 source, as you would type it into a notebook cell. "
                                                 "print() what you want to see, or end with an expression."}
        timeout = {"type": "number", "exclusiveMinimum": 0, "maximum": float(f["max_timeout"]),
                   "description": f"Wall-clock seconds before the run is stopped. Default {f['timeout']}, "
                                  f"at most {f['max_timeout']}."}
        running = (
            f" To see results, print() them or end the code with an expression: its value comes back like a notebook's "
            f"Out[n]. Matplotlib figures come back as PNG images by themselves (no plt.show() or savefig needed). "
            f"An exception comes back as its traceback, with isError set; so does a run stopped by a limit. Available: "
            f"{f['packages']}. There is no network access: nothing can be pip-installed or downloaded. Limits per run: "
            f"{f['timeout']} s wall-clock unless you pass timeout (at most {f['max_timeout']} s), {f['memory']} of "
            f"memory, {f['output']} of printed output. The structured result has the full execution record "
            f"(status, stdout, stderr, Jupyter outputs, error, duration)."
        )
        no_world = dict(open_world_hint=False)
        tools = [
            Tool(name="run_python", title="Run Python once",
                 description="Run Python code once in a fresh, isolated sandbox that is thrown away afterwards: "
                             "nothing persists to the next call (for that, use create_session and run_cell)." + running,
                 input_schema=_object(["code"], code=code, timeout=timeout),
                 output_schema=ExecutionResult.model_json_schema(mode="serialization"),
                 annotations=ToolAnnotations(title="Run Python once", destructive_hint=False, **no_world)),
            Tool(name="create_session", title="Create a Python session",
                 description="Start a persistent Python session (like a notebook kernel) and return its session_id. "
                             "Variables, functions, imports and files persist across run_cell calls in it. Each session "
                             "has its own empty working directory: put files there with upload_file, read what code "
                             f"wrote with download_file. A session closes by itself after {f['idle']} s without a "
                             f"call (at most {f['lifetime']} h in all), and with the MCP connection that opened it; "
                             "close it with close_session when done.",
                 input_schema=_object([], idle_timeout={
                     "type": "number", "exclusiveMinimum": 0,
                     "description": f"Close the session after this many seconds without a call. Default {f['idle']}."}),
                 output_schema=SessionOut.model_json_schema(),
                 annotations=ToolAnnotations(title="Create a Python session", destructive_hint=False, **no_world)),
            Tool(name="run_cell", title="Run code in a session",
                 description="Run Python code in a session from create_session, like a notebook cell: everything "
                             "earlier cells defined or imported is still there, and the working directory holds the "
                             "session's files. Cells in one session run one at a time. After a timeout the session "
                             "normally survives (the cell gets KeyboardInterrupt); if its interpreter had to be "
                             "killed (memory limit, crash), the next cell starts a fresh interpreter, with the files "
                             "kept, and says so." + running,
                 input_schema=_object(["session_id", "code"], session_id=SESSION_ID, code=code, timeout=timeout),
                 output_schema=ExecutionResult.model_json_schema(mode="serialization"),
                 annotations=ToolAnnotations(title="Run code in a session", destructive_hint=False, **no_world)),
            Tool(name="run_command", title="Run a shell command in a session",
                 description="Run a shell command line (/bin/sh -c) in a session from create_session, in its working "
                             "directory, on the same files its Python cells see: ls, grep, cat, running a script. "
                             "Coreutils and the host's /usr programs are there, read-only; there is no network. It "
                             "takes its turn like a cell. The result has the exit code, stdout and stderr; a non-zero "
                             "exit sets isError.",
                 input_schema=_object(["session_id", "command"], session_id=SESSION_ID,
                                      command={"type": "string", "description": "The command line, e.g. 'ls -la'."},
                                      timeout=timeout),
                 output_schema=CommandResult.model_json_schema(mode="serialization"),
                 annotations=ToolAnnotations(title="Run a shell command in a session", destructive_hint=False,
                                             **no_world)),
            Tool(name="upload_file", title="Upload a file to a session",
                 description="Write a file into a session's working directory, where its code can open() it by the "
                             "same relative path. Text is stored as UTF-8; for binary data (images, Excel, Parquet, "
                             "zip, ...) pass the bytes base64-encoded with encoding='base64'. Creates missing "
                             f"directories and replaces an existing file. At most {f['files']}.",
                 input_schema=_object(["session_id", "path", "content"], session_id=SESSION_ID, path=PATH, content={
                     "type": "string", "description": "The file's content: text, or base64 with encoding='base64'."},
                     encoding={"type": "string", "enum": ["text", "base64"], "default": "text",
                               "description": "'text' (stored as UTF-8, the default) or 'base64' (decoded to bytes)."}),
                 output_schema=UploadOut.model_json_schema(),
                 annotations=ToolAnnotations(title="Upload a file to a session", destructive_hint=True,
                                             idempotent_hint=True, **no_world)),
            Tool(name="download_file", title="Download a file from a session",
                 description="Read a file from a session's working directory, such as one its code wrote. UTF-8 "
                             "text comes back as text; PNG, JPEG, GIF and WebP images as an image; other binary "
                             "data base64-encoded (the structured result's 'encoding' says which). At most "
                             f"{f['files']}; for a large file, read the part you need with run_cell instead.",
                 input_schema=_object(["session_id", "path"], session_id=SESSION_ID, path=PATH),
                 output_schema=DownloadOut.model_json_schema(),
                 annotations=ToolAnnotations(title="Download a file from a session", read_only_hint=True, **no_world)),
            Tool(name="list_files", title="List a session's files",
                 description="List the files in a session's working directory (recursively), with their sizes: "
                             "what was uploaded and what its code wrote.",
                 input_schema=_object(["session_id"], session_id=SESSION_ID),
                 output_schema=FileListOut.model_json_schema(),
                 annotations=ToolAnnotations(title="List a session's files", read_only_hint=True, **no_world)),
            Tool(name="close_session", title="Close a session",
                 description="Close a session: its interpreter stops and its variables and files are deleted. "
                             "Download anything you want to keep first.",
                 input_schema=_object(["session_id"], session_id=SESSION_ID),
                 output_schema=ClosedOut.model_json_schema(),
                 annotations=ToolAnnotations(title="Close a session", destructive_hint=True, **no_world)),
        ]
        return {tool.name: tool for tool in tools}


def tool_error(message: str) -> CallToolResult:
    return CallToolResult(content=[text(message)], is_error=True)


def image_type(data: bytes) -> str | None:
    """The MIME type of an image a model can look at, from its first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def http_caller(ctx: ServerRequestContext[Any, Any]) -> Caller:
    """The caller of a call that came over ``/mcp``: the endpoint put the principal on the request."""
    request = ctx.request  # the Starlette request that carried this message
    if request is None:
        raise AuthenticationError("an API key is required")
    principal = (request.scope.get("state") or {}).get("principal")
    if not isinstance(principal, str):
        raise AuthenticationError("an API key is required")
    return Caller(principal, request.headers.get("mcp-session-id") or None)


def local_caller(ctx: ServerRequestContext[Any, Any]) -> Caller:
    return Caller(LOCAL)
