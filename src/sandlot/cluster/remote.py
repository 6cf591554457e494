"""A session that lives on some node, as the server's routes, MCP and the agent see it.

``RemoteSession`` has the part of ``engine.Session``'s face that those callers use, and nothing else:
every call names the session by id on its node's ``NodeEngine`` (through the facade, which knows the
node and restores the session elsewhere when the node is lost). It keeps the session's last info,
returned with each call, so ``info()`` stays a plain read as it is for a local session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from .._config import Limits
from .._models import CommandResult, ExecutionResult
from ..engine import Cell, EventCallback, FileInfo

if TYPE_CHECKING:
    from .facade import ClusterEngine


class RemoteCommand:
    """A background command's id and last result, as ``Session.commands`` values are read."""

    def __init__(self, command_id: str, result: CommandResult | None) -> None:
        self.id = command_id
        self._result = result

    def result(self) -> CommandResult:
        assert self._result is not None
        return self._result


class RemoteWorkspace:
    """The session's files on its node. Blocking methods, as ``engine.Workspace``'s are (callers use threads)."""

    def __init__(self, session: RemoteSession) -> None:
        self._session = session

    def _call(self, name: str, *args: Any) -> Any:
        return self._session.cluster.call_blocking(self._session, "workspace", name, args)

    def write(self, relpath: str, data: bytes) -> None:
        self._call("write", relpath, data)

    def read(self, relpath: str, max_bytes: int) -> bytes:
        data: bytes = self._call("read", relpath, max_bytes)
        return data

    def delete(self, relpath: str) -> None:
        self._call("delete", relpath)

    def list_files(self, max_entries: int = 10_000) -> list[FileInfo]:
        files: list[FileInfo] = self._call("list_files", max_entries)
        return files


class RemoteSession:
    """A session on a node of the cluster."""

    def __init__(self, cluster: ClusterEngine, session_id: str, described: Mapping[str, Any]) -> None:
        self.cluster = cluster
        self.id = session_id
        self.closed = False
        self.update(described)

    def __repr__(self) -> str:
        return f"<RemoteSession {self.id} node={self.cluster.node_of(self.id)}>"

    def update(self, described: Mapping[str, Any]) -> None:
        self._info = dict(described["info"])
        self.owner: str = described["owner"]
        self.idle_timeout: float = described["idle_timeout"]
        self.tool_names: list[str] | None = described["tool_names"]
        self.limits: Limits = described["limits"]

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    @property
    def execution_count(self) -> int:
        return int(self._info["execution_count"])

    @property
    def state(self) -> str:
        return str(self._info["state"])

    async def _call(self, name: str, *args: Any, on_event: EventCallback | None = None, **options: Any) -> Any:
        result, info = await self.cluster.session_call(self, name, args, options, on_event)
        self._info = info
        return result

    async def execute(self, code: str, *, timeout: float | None = None,
                      on_event: EventCallback | None = None) -> ExecutionResult:
        result: ExecutionResult = await self._call("execute", code, timeout=timeout, on_event=on_event)
        return result

    async def run_command(self, cmd: str, *, cwd: str | None = None, env: dict[str, str] | None = None,
                          timeout: float | None = None, stdin: str | None = None,
                          on_event: EventCallback | None = None) -> CommandResult:
        result: CommandResult = await self._call("run_command", cmd, cwd=cwd, env=env, timeout=timeout, stdin=stdin,
                                                 on_event=on_event)
        return result

    async def start_command(self, cmd: str, *, cwd: str | None = None, env: dict[str, str] | None = None,
                            timeout: float | None = None) -> RemoteCommand:
        command = await self._call("start_command", cmd, cwd=cwd, env=env, timeout=timeout)
        return RemoteCommand(command.id, None)

    @property
    def commands(self) -> dict[str, RemoteCommand]:
        found = self.cluster.call_blocking(self, "commands")
        return {cid: RemoteCommand(cid, result) for cid, result in found.items()}

    def command(self, command_id: str) -> RemoteCommand:
        return RemoteCommand(command_id, self.cluster.call_blocking(self, "command", command_id))

    async def write_command_stdin(self, command_id: str, data: str, *, eof: bool = False) -> None:
        await self._call("write_command_stdin", command_id, data, eof=eof)

    async def kill_command(self, command_id: str) -> CommandResult:
        result: CommandResult = await self._call("kill_command", command_id)
        return result

    async def interrupt(self) -> None:
        await self._call("interrupt")

    async def pause(self) -> None:
        await self._call("pause")

    async def resume(self) -> None:
        await self._call("resume")

    async def export(self, out: IO[bytes]) -> None:
        data = await self.cluster.session_request(self, "export")
        await asyncio.to_thread(out.write, data)

    async def open_workspace(self) -> RemoteWorkspace:
        return RemoteWorkspace(self)

    @property
    def workspace(self) -> RemoteWorkspace:
        return RemoteWorkspace(self)

    @property
    def history(self) -> list[Cell]:
        cells: list[Cell] = self.cluster.call_blocking(self, "history")
        return cells

    def live_figures(self) -> dict[str, Any]:
        figures: dict[str, Any] = self.cluster.call_blocking(self, "live_figures")
        return figures
