"""Shell commands on the host side: each one's record, and the protocol with one sandbox.

A command is ``/bin/sh -c`` started by the sandbox's runtime (``sandlot_runtime.commands``) beside
the interpreter: same containment, workspace and limits. ``Command`` is what the host knows of one
(its output within the ``output_size`` limit, its status); ``SandboxCommands`` sends the requests
and routes the sandbox's ``cmd_out`` and ``cmd_exit`` messages, which are hostile input like
every frame: schema-checked before they get here, and one for a command never started is a
protocol violation.

Output limits: a foreground command keeps its first ``output_size`` bytes, as a run does; a
background one (a server, a watcher) its most recent ``output_size`` bytes of each stream, so
``GET …/commands/{id}`` shows what it is doing now. Either says ``truncated`` once it dropped any.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .._errors import InvalidRequestError, ProtocolError
from .._models import CommandExitMessage, CommandOutputMessage, CommandResult, CommandStatus
from .code import check_code
from .collector import EventCallback

KILL_GRACE = 2.0
"""Seconds a command has to report its end after it was killed, before its whole sandbox goes."""


MAX_KEPT = 100
"""Finished commands a session keeps for ``GET …/commands`` (running ones are always kept)."""


def check_command(cmd: str, stdin: str | None = None) -> None:
    """Refuse a command (or its stdin) that is not text or over the code limit, like a cell's code."""
    check_code(cmd)
    if stdin is not None:
        check_code(stdin)


def command_cwd(cwd: str | None) -> str:
    """``cwd`` as the runtime takes it: relative to the workspace, normalized; refused if it leaves it.
    (The runtime resolves it against the workspace it holds open: in degraded mode the sandbox may
    not be allowed to walk the workspace's host path from ``/``.)"""
    if not cwd:
        return "."
    if "\x00" in cwd or cwd.startswith("/"):
        raise InvalidRequestError("cwd must be a path relative to the workspace")
    normal = posixpath.normpath(cwd)
    if normal == ".." or normal.startswith("../"):
        raise InvalidRequestError("cwd must stay inside the workspace")
    return normal


class Command:
    """One shell command, as the host tracks it."""

    def __init__(self, cmd: str, *, background: bool, output_size: int, on_event: EventCallback | None = None) -> None:
        self.id = "cmd_" + secrets.token_hex(8)
        self.cmd = cmd
        self.background = background
        self.status: CommandStatus = "running"
        self.exit_code: int | None = None
        self.error: str | None = None
        self.truncated = False
        self.timed_out = False
        self.on_event = on_event
        self.sandbox: SandboxCommands | None = None
        """Where it runs (set when it starts): stdin and kills go there."""
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._started = time.perf_counter()
        self._ended: float | None = None
        self._limit = output_size
        self._head: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._head_bytes = 0
        self._tail: dict[str, deque[tuple[str, int]]] = {"stdout": deque(), "stderr": deque()}
        self._tail_bytes = {"stdout": 0, "stderr": 0}

    def __repr__(self) -> str:
        return f"<Command {self.id} {self.status}{' background' if self.background else ''}>"

    @property
    def running(self) -> bool:
        return self.status == "running"

    def add_output(self, name: str, text: str) -> None:
        encoded = text.encode("utf-8", "surrogatepass")
        if self.background:
            self._keep_tail(name, text, len(encoded))
        else:
            room = self._limit - self._head_bytes
            if len(encoded) > room:
                self.truncated = True
                if room <= 0:
                    return
                encoded = encoded[:room]
                text = encoded.decode("utf-8", "ignore")
            self._head_bytes += len(encoded)
            self._head[name].append(text)
        if self.on_event is not None:
            self.on_event(name, text)

    def _keep_tail(self, name: str, text: str, size: int) -> None:
        if size > self._limit:
            text = text.encode("utf-8", "surrogatepass")[-self._limit:].decode("utf-8", "ignore")
            size = len(text.encode("utf-8", "surrogatepass"))
            self.truncated = True
        chunks = self._tail[name]
        chunks.append((text, size))
        self._tail_bytes[name] += size
        while self._tail_bytes[name] > self._limit:
            _dropped, dropped_size = chunks.popleft()
            self._tail_bytes[name] -= dropped_size
            self.truncated = True

    def text(self, name: str) -> str:
        return "".join(text for text, _size in self._tail[name]) if self.background else "".join(self._head[name])

    def end(self, status: CommandStatus, exit_code: int | None = None, error: str | None = None) -> None:
        if not self.running:
            return
        self.status, self.exit_code, self.error = status, exit_code, error
        self._ended = time.perf_counter()
        if not self.finished.done():
            self.finished.set_result(None)

    def result(self) -> CommandResult:
        end = self._ended if self._ended is not None else time.perf_counter()
        return CommandResult(id=self.id, cmd=self.cmd, status=self.status, exit_code=self.exit_code,
                             stdout=self.text("stdout"), stderr=self.text("stderr"),
                             duration_ms=round((end - self._started) * 1000.0, 3), truncated=self.truncated,
                             background=self.background, error=self.error)


class SandboxCommands:
    """The commands running in one sandbox, and the messages about them (owned by its ``Sandbox``)."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]], kill_sandbox: Callable[[str], None],
                 oom_kills: Callable[[], int]) -> None:
        self._send = send
        self._kill_sandbox = kill_sandbox
        self._oom_kills = oom_kills
        self._next_id = 0
        self._running: dict[int, Command] = {}
        self._wire_ids: dict[str, int] = {}
        self._ooms_before: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"<SandboxCommands running={len(self._running)} started={self._next_id}>"

    async def start(self, command: Command, *, cwd: str, env: dict[str, str], stdin: str | None) -> None:
        """Start ``command``; with ``stdin`` it gets that and then end of file, without it (background) it
        keeps its stdin open for ``write_stdin``; a foreground one without ``stdin`` reads end of file."""
        self._next_id += 1
        wire_id = self._next_id
        self._running[wire_id] = command
        self._wire_ids[command.id] = wire_id
        command.sandbox = self
        self._ooms_before[wire_id] = self._oom_kills()
        message: dict[str, Any] = {"t": "cmd", "id": wire_id, "cmd": command.cmd, "cwd": cwd, "env": env,
                                   "keep_stdin": command.background and stdin is None}
        if stdin:
            message["stdin"] = stdin
        try:
            await self._send(message)
        except OSError:
            self._finish(wire_id, "killed", None, "the sandbox ended before the command started")

    async def run(self, command: Command, *, timeout: float, cwd: str, env: dict[str, str], stdin: str | None,
                  kill_sandbox_on_timeout: bool) -> None:
        """Run a foreground command to its end; at ``timeout`` it is killed (its sandbox with it, for a
        one-shot: nothing else lives there), and a cancelled call kills it too."""
        await self.start(command, cwd=cwd, env=env, stdin=stdin)
        try:
            await asyncio.wait_for(asyncio.shield(command.finished), timeout)
        except TimeoutError:
            command.timed_out = True
            if kill_sandbox_on_timeout:
                self._kill_sandbox("timeout")
            else:
                await self.kill(command)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(command.finished), KILL_GRACE)
            if command.running:  # the runtime did not answer: nothing short of the sandbox is sure to stop it
                self._kill_sandbox("timeout")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(command.finished), KILL_GRACE)
                self.end_all("the sandbox ended")
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self.kill(command)
            raise

    async def write_stdin(self, command: Command, data: str, *, eof: bool = False) -> None:
        wire_id = self._wire_ids.get(command.id)
        if wire_id is not None and command.running:
            with contextlib.suppress(OSError):
                await self._send({"t": "cmd_stdin", "id": wire_id, "data": data, "eof": eof})

    async def kill(self, command: Command) -> None:
        """SIGKILL the command's process group (status ``killed``, or ``timeout`` if it ran out of time)."""
        wire_id = self._wire_ids.get(command.id)
        if wire_id is not None and command.running:
            with contextlib.suppress(OSError):
                await self._send({"t": "cmd_kill", "id": wire_id})

    def on_message(self, message: CommandOutputMessage | CommandExitMessage) -> None:
        if message.id > self._next_id or message.id <= 0:
            raise ProtocolError("a message about a command that was never started")
        command = self._running.get(message.id)
        if command is None:
            return  # ended already (killed, given up on): late output belongs to nobody
        if isinstance(message, CommandOutputMessage):
            command.add_output(message.name, message.text)
            return
        if message.error is not None:  # it never started (a cwd that is not there, say)
            self._finish(message.id, "error", None, message.error)
        elif message.exit_code is not None:
            self._finish(message.id, "timeout" if command.timed_out else "ok" if message.exit_code == 0 else "error",
                         message.exit_code, None)
        else:
            signum = message.signal
            if command.timed_out:
                status: CommandStatus = "timeout"
            elif self._oom_kills() > self._ooms_before.get(message.id, 0):
                status = "memory"
            else:
                status = "killed"
            self._finish(message.id, status, None, f"the command was ended by signal {signum}")

    def end_all(self, reason: str) -> None:
        """The sandbox is gone: every command still running ended with it."""
        for wire_id, command in list(self._running.items()):
            memory = self._oom_kills() > self._ooms_before.get(wire_id, 0)
            status: CommandStatus = "timeout" if command.timed_out else "memory" if memory else "killed"
            self._finish(wire_id, status, None, reason)

    def _finish(self, wire_id: int, status: CommandStatus, exit_code: int | None, error: str | None) -> None:
        command = self._running.pop(wire_id, None)
        self._ooms_before.pop(wire_id, None)
        if command is not None:
            self._wire_ids.pop(command.id, None)
            command.end(status, exit_code, error)
