"""The daemon's Connect services (``process.Process``, ``filesystem.Filesystem``), on the stubs ``e2b`` ships.

The ``e2b`` package carries the Connect-RPC code generated from E2B's own protocol definitions (``e2b.envd``), for
the ``connectrpc`` library it uses as a client; the same generated modules hold the server side (an ASGI
application per service). sandlot implements the two service protocols here and lets ``connectrpc`` do the
framing: unary JSON or protobuf, and server-streaming envelopes. Errors translate at one seam, ``_translated``.
What sandlot does not do (PTYs, watchers, ``update``, client-streamed input) answers ``UNIMPLEMENTED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from e2b.envd.filesystem import filesystem_connect, filesystem_pb
from e2b.envd.process import process_connect, process_pb
from protobuf import Oneof
from protobuf.wkt.google.protobuf.timestamp_pb import Timestamp

from .._errors import CapacityError, InvalidRequestError, NotFoundError, SandlotError, TooLargeError
from .._models import CommandResult
from ..server.auth import Quotas
from .environment import checked_env
from .filesystem import FileSystem
from .process import MAX_QUEUED, Process, ProcessEvent
from .sandboxes import CHECKED_SANDBOX, E2BSandbox, Sandboxes

Ctx = RequestContext[Any, Any]

_CODES = ((NotFoundError, Code.NOT_FOUND), (InvalidRequestError, Code.INVALID_ARGUMENT),
          (TooLargeError, Code.RESOURCE_EXHAUSTED), (CapacityError, Code.RESOURCE_EXHAUSTED))


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except SandlotError as exc:
        code = next((c for kind, c in _CODES if isinstance(exc, kind)), Code.UNAVAILABLE)
        raise ConnectError(code, str(exc)) from exc


def _unimplemented(what: str) -> ConnectError:
    return ConnectError(Code.UNIMPLEMENTED, f"{what} is not supported by sandlot's E2B face (docs/e2b.md)")


class _Service:
    def __init__(self, registry: Sandboxes, quotas: Quotas) -> None:
        self.registry = registry
        self.quotas = quotas

    def sandbox(self, ctx: Ctx) -> E2BSandbox:
        # The sandbox the dispatcher checked (id and access token) for this call; the headers are not read again.
        checked = CHECKED_SANDBOX.get()
        if checked is None:
            raise ConnectError(Code.UNAUTHENTICATED, "no checked sandbox for this call")
        with _translated():
            return self.registry.get(checked.id)


# ---- process.Process ----------------------------------------------------------------

def _end_event(result: CommandResult) -> process_pb.ProcessEvent.EndEvent:
    code = result.exit_code
    if code is not None:
        return process_pb.ProcessEvent.EndEvent(exit_code=code, exited=True, status=f"exit status {code}")
    end = process_pb.ProcessEvent.EndEvent(exit_code=-1, exited=False, status="signal: killed")
    if result.error is not None:
        end.error = result.error
    return end


def _started(pid: int) -> process_pb.ProcessEvent:
    start: Oneof[Literal["start"], process_pb.ProcessEvent.StartEvent] = Oneof(
        "start", process_pb.ProcessEvent.StartEvent(pid=pid))
    return process_pb.ProcessEvent(event=start)


def _wire(event: ProcessEvent) -> process_pb.ProcessEvent:
    if event.kind == "overflow":
        raise ConnectError(Code.RESOURCE_EXHAUSTED, f"the client fell more than {MAX_QUEUED} events behind the "
                                                    "command's output: its stream ended (the command goes on)")
    if event.kind == "keepalive":
        keepalive: Oneof[Literal["keepalive"], process_pb.ProcessEvent.KeepAlive] = Oneof(
            "keepalive", process_pb.ProcessEvent.KeepAlive())
        return process_pb.ProcessEvent(event=keepalive)
    if event.kind == "end":
        end: Oneof[Literal["end"], process_pb.ProcessEvent.EndEvent] = Oneof("end", _end_event(event.data))
        return process_pb.ProcessEvent(event=end)
    chunk = str(event.data).encode("utf-8", "surrogatepass")
    if event.kind == "stderr":
        stderr: Oneof[Literal["stderr"], bytes] = Oneof("stderr", chunk)
        payload = process_pb.ProcessEvent.DataEvent(output=stderr)
    else:
        stdout: Oneof[Literal["stdout"], bytes] = Oneof("stdout", chunk)
        payload = process_pb.ProcessEvent.DataEvent(output=stdout)
    data: Oneof[Literal["data"], process_pb.ProcessEvent.DataEvent] = Oneof("data", payload)
    return process_pb.ProcessEvent(event=data)


def _info(process: Process) -> process_pb.ProcessInfo:
    config = process_pb.ProcessConfig(cmd=process.cmd, args=list(process.args), envs=dict(process.envs))
    if process.cwd is not None:
        config.cwd = process.cwd
    info = process_pb.ProcessInfo(config=config, pid=process.pid)
    if process.tag is not None:
        info.tag = process.tag
    return info


class ProcessService(_Service, process_connect.Process):
    """E2B's process service on a sandbox's session (``process.py`` holds the logic)."""

    def _select(self, sandbox: E2BSandbox, selector: process_pb.ProcessSelector | None) -> Process:
        chosen = selector.selector if selector is not None else None
        with _translated():
            if chosen is not None and chosen.field == "pid":
                return sandbox.processes.get(pid=int(chosen.value))
            if chosen is not None and chosen.field == "tag":
                return sandbox.processes.get(tag=str(chosen.value))
        raise ConnectError(Code.INVALID_ARGUMENT, "a process selector (pid or tag) is required")

    async def list(self, request: process_pb.ListRequest, ctx: Ctx) -> process_pb.ListResponse:
        return process_pb.ListResponse(processes=[_info(p) for p in self.sandbox(ctx).processes.running()])

    async def start(self, request: process_pb.StartRequest, ctx: Ctx) -> AsyncIterator[process_pb.StartResponse]:
        sandbox = self.sandbox(ctx)
        if request.pty is not None:
            raise _unimplemented("a PTY")
        config = request.process
        if config is None or not config.cmd:
            raise ConnectError(Code.INVALID_ARGUMENT, "process.cmd is required")
        stdin = request.stdin if request.has_field("stdin") else True
        with contextlib.ExitStack() as slot:
            with _translated():
                # A run in flight for the key's quota while its stream is open, as sandlot's own command routes hold
                # one (a background command whose client disconnected no longer counts, as sandlot's do not).
                slot.enter_context(self.quotas.run(sandbox.owner))
                process, queue = await sandbox.processes.start(
                    cmd=config.cmd, args=list(config.args), envs=checked_env(dict(config.envs), "process.envs"),
                    cwd=config.cwd if config.has_field("cwd") else None,
                    tag=request.tag if request.has_field("tag") else None, stdin=stdin)
            yield process_pb.StartResponse(event=_started(process.pid))
            remaining = ctx.timeout_ms
            deadline = None if remaining is None else asyncio.get_running_loop().time() + remaining / 1000.0
            if deadline is not None:  # E2B's timeout ends the command even after its client disconnected
                sandbox.processes.kill_at(process, deadline)
            async for event in sandbox.processes.events(process, queue, deadline=deadline):
                yield process_pb.StartResponse(event=_wire(event))
        if process.command.running:  # its deadline passed: it was killed, as E2B's timeout promises
            raise ConnectError(Code.DEADLINE_EXCEEDED, f"the command ran past its timeout (pid {process.pid})")

    async def connect(self, request: process_pb.ConnectRequest, ctx: Ctx) -> AsyncIterator[process_pb.ConnectResponse]:
        sandbox = self.sandbox(ctx)
        process = self._select(sandbox, request.process)
        queue = sandbox.processes.listen(process)
        yield process_pb.ConnectResponse(event=_started(process.pid))
        async for event in sandbox.processes.events(process, queue):
            yield process_pb.ConnectResponse(event=_wire(event))

    async def send_input(self, request: process_pb.SendInputRequest, ctx: Ctx) -> process_pb.SendInputResponse:
        sandbox = self.sandbox(ctx)
        process = self._select(sandbox, request.process)
        given = request.input.input if request.input is not None else None
        if given is None or given.field != "stdin":
            raise _unimplemented("input to a PTY")
        with _translated():
            await sandbox.processes.write(process, bytes(given.value).decode("utf-8", "replace"))
        return process_pb.SendInputResponse()

    async def close_stdin(self, request: process_pb.CloseStdinRequest, ctx: Ctx) -> process_pb.CloseStdinResponse:
        sandbox = self.sandbox(ctx)
        process = self._select(sandbox, request.process)
        with _translated():
            await sandbox.processes.write(process, "", eof=True)
        return process_pb.CloseStdinResponse()

    async def send_signal(self, request: process_pb.SendSignalRequest, ctx: Ctx) -> process_pb.SendSignalResponse:
        sandbox = self.sandbox(ctx)
        process = self._select(sandbox, request.process)
        # SIGTERM and SIGKILL alike end the command's whole process group: sandlot's kill is SIGKILL.
        with _translated():
            await sandbox.processes.kill(process)
        return process_pb.SendSignalResponse()

    async def update(self, request: process_pb.UpdateRequest, ctx: Ctx) -> process_pb.UpdateResponse:
        raise _unimplemented("resizing a PTY")

    async def stream_input(self, request: AsyncIterator[process_pb.StreamInputRequest], ctx: Ctx) -> process_pb.StreamInputResponse:
        raise _unimplemented("client-streamed input")


# ---- filesystem.Filesystem ------------------------------------------------------------

def _entry(found: dict[str, Any]) -> filesystem_pb.EntryInfo:
    kind = filesystem_pb.FileType.DIRECTORY if found["type"] == "dir" else filesystem_pb.FileType.FILE
    modified = Timestamp.from_datetime(datetime.datetime.fromtimestamp(found["mtime"], datetime.UTC))
    entry = filesystem_pb.EntryInfo(name=found["name"], type=kind, path=found["path"], size=found["size"],
                                    mode=found["mode"], permissions=found["permissions"], owner=str(found["uid"]),
                                    group=str(found["gid"]), modified_time=modified,
                                    is_symlink=found["symlink_target"] is not None)
    if found["symlink_target"] is not None:
        entry.symlink_target = found["symlink_target"]
    return entry


class FilesystemService(_Service, filesystem_connect.Filesystem):
    """E2B's file-system service; the calls run inside the sandbox (``filesystem.py``)."""

    def _fs(self, ctx: Ctx) -> FileSystem:
        return FileSystem(self.sandbox(ctx).session)

    async def stat(self, request: filesystem_pb.StatRequest, ctx: Ctx) -> filesystem_pb.StatResponse:
        with _translated():
            return filesystem_pb.StatResponse(entry=_entry(await self._fs(ctx).stat(request.path)))

    async def list_dir(self, request: filesystem_pb.ListDirRequest, ctx: Ctx) -> filesystem_pb.ListDirResponse:
        with _translated():
            found = await self._fs(ctx).list(request.path, request.depth or 1)
        return filesystem_pb.ListDirResponse(entries=[_entry(f) for f in found])

    async def make_dir(self, request: filesystem_pb.MakeDirRequest, ctx: Ctx) -> filesystem_pb.MakeDirResponse:
        with _translated():
            made = await self._fs(ctx).make_dir(request.path)
        if made is None:  # E2B's daemon says so with ALREADY_EXISTS; the SDK's make_dir then returns False
            raise ConnectError(Code.ALREADY_EXISTS, f"directory {request.path!r} already exists")
        return filesystem_pb.MakeDirResponse(entry=_entry(made))

    async def remove(self, request: filesystem_pb.RemoveRequest, ctx: Ctx) -> filesystem_pb.RemoveResponse:
        with _translated():
            await self._fs(ctx).remove(request.path)
        return filesystem_pb.RemoveResponse()

    async def move(self, request: filesystem_pb.MoveRequest, ctx: Ctx) -> filesystem_pb.MoveResponse:
        with _translated():
            return filesystem_pb.MoveResponse(entry=_entry(await self._fs(ctx).move(request.source, request.destination)))

    def watch_dir(self, request: filesystem_pb.WatchDirRequest, ctx: Ctx) -> AsyncIterator[filesystem_pb.WatchDirResponse]:
        raise _unimplemented("watching a directory")

    async def create_watcher(self, request: filesystem_pb.CreateWatcherRequest, ctx: Ctx) -> filesystem_pb.CreateWatcherResponse:
        raise _unimplemented("watching a directory")

    async def get_watcher_events(self, request: filesystem_pb.GetWatcherEventsRequest,
                                 ctx: Ctx) -> filesystem_pb.GetWatcherEventsResponse:
        raise _unimplemented("watching a directory")

    async def remove_watcher(self, request: filesystem_pb.RemoveWatcherRequest, ctx: Ctx) -> filesystem_pb.RemoveWatcherResponse:
        raise _unimplemented("watching a directory")


def applications(registry: Sandboxes, quotas: Quotas) -> dict[str, Any]:
    """The Connect ASGI applications by path prefix (``/process.Process/``, ``/filesystem.Filesystem/``)."""
    return {
        "/process.Process/": process_connect.ProcessASGIApplication(ProcessService(registry, quotas)),
        "/filesystem.Filesystem/": filesystem_connect.FilesystemASGIApplication(FilesystemService(registry, quotas)),
    }
