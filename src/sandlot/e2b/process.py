"""E2B processes as sandlot shell commands.

E2B's ``commands.run`` starts a process (``/bin/bash -l -c CMD`` by default) and streams its output; sandlot runs it
as a background command of the sandbox's session (so it runs beside cells, as E2B's processes run beside the
interpreter), with its stdin open only when the SDK asked for it. E2B names processes by pid: each command gets
the next number here (it is not a pid inside the sandbox, which has its own pid namespace). A process runs until
it ends, its ``timeout`` passes (it is killed then, whether anyone still listens or not) or the sandbox ends; a
client that goes away (E2B's ``CommandHandle.disconnect()``) leaves it running, listed and reachable by ``connect``.

Each listener's queue is bounded (``MAX_QUEUED`` events): a listener that falls that far behind loses its stream
(an ``overflow`` event ends it; the process goes on), so a client that never reads cannot grow the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from .._errors import NotFoundError, SandlotError
from ..engine import Session
from ..engine.commands import Command
from .paths import workspace_relative

KEEPALIVE = 1.0
"""Seconds of silence after which a process stream sends a keepalive."""
MAX_QUEUED = 256
"""Events a listener may fall behind before its stream is ended."""
MAX_ENDED = 100
"""Ended processes kept for ``list``-free lookups (``connect`` to one that just ended still gets its end)."""


@dataclass
class ProcessEvent:
    kind: str  # "stdout" | "stderr" | "end" | "keepalive" | "overflow"
    data: Any = None


@dataclass
class Process:
    pid: int
    command: Command
    cmd: str
    args: list[str]
    envs: dict[str, str]
    cwd: str | None
    tag: str | None
    listeners: set[asyncio.Queue[ProcessEvent]] = field(default_factory=set)
    overflowed: set[asyncio.Queue[ProcessEvent]] = field(default_factory=set)
    """Listeners dropped for falling behind: their streams end once they have read what they hold."""
    announced: bool = False
    """Its end was told to its listeners (once: by its watcher, or by ``Processes.close``)."""

    def publish(self, event: ProcessEvent) -> None:
        for queue in list(self.listeners):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.listeners.discard(queue)
                self.overflowed.add(queue)


class Processes:
    """The processes of one E2B sandbox."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.by_pid: dict[int, Process] = {}
        self._next_pid = 1000
        self._watchers: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<Processes running={sum(p.command.running for p in self.by_pid.values())}>"

    async def start(self, *, cmd: str, args: list[str], envs: dict[str, str], cwd: str | None, tag: str | None,
                    stdin: bool) -> tuple[Process, asyncio.Queue[ProcessEvent]]:
        """Start a process; the queue returned hears its output and its end from the first byte."""
        shell, where = _shell_command(cmd, args, cwd)
        queue: asyncio.Queue[ProcessEvent] = asyncio.Queue(MAX_QUEUED)
        holder: list[Process] = []
        early: list[ProcessEvent] = []

        def on_event(name: str, text: Any) -> None:
            event = ProcessEvent(name, text)
            if holder:
                holder[0].publish(event)
            else:
                early.append(event)

        command = await self.session.start_command(shell, cwd=where, env=envs, on_event=on_event)
        self._next_pid += 1
        process = Process(self._next_pid, command, cmd, args, envs, cwd, tag, listeners={queue})
        holder.append(process)
        for event in early:
            process.publish(event)
        self.by_pid[process.pid] = process
        if not stdin:
            with contextlib.suppress(SandlotError):
                await self.session.write_command_stdin(command.id, "", eof=True)
        watcher = asyncio.get_running_loop().create_task(self._announce_end(process))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        self._forget_old()
        return process, queue

    async def _announce_end(self, process: Process) -> None:
        await asyncio.shield(process.command.finished)
        self._announce(process)

    @staticmethod
    def _announce(process: Process) -> None:
        if not process.announced:
            process.announced = True
            process.publish(ProcessEvent("end", process.command.result()))

    def _forget_old(self) -> None:
        ended = [pid for pid, p in self.by_pid.items() if not p.command.running]
        for pid in ended[:max(0, len(ended) - MAX_ENDED)]:
            del self.by_pid[pid]

    def get(self, pid: int | None = None, tag: str | None = None) -> Process:
        for process in self.by_pid.values():
            if (pid is not None and process.pid == pid) or (tag is not None and process.tag == tag):
                return process
        raise NotFoundError(f"process with {'pid ' + str(pid) if pid is not None else 'tag ' + repr(tag)} not found")

    def running(self) -> list[Process]:
        return [p for p in self.by_pid.values() if p.command.running]

    def kill_at(self, process: Process, deadline: float) -> None:
        """Kill the process at ``deadline`` (loop time) if it still runs: its ``timeout``, with or without a listener."""
        async def kill_later() -> None:
            await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))
            if process.command.running:
                with contextlib.suppress(SandlotError):
                    await self.session.kill_command(process.command.id)

        timer = asyncio.get_running_loop().create_task(kill_later())
        self._watchers.add(timer)
        timer.add_done_callback(self._watchers.discard)

    def listen(self, process: Process) -> asyncio.Queue[ProcessEvent]:
        queue: asyncio.Queue[ProcessEvent] = asyncio.Queue(MAX_QUEUED)
        process.listeners.add(queue)
        if not process.command.running:
            queue.put_nowait(ProcessEvent("end", process.command.result()))
        return queue

    async def events(self, process: Process, queue: asyncio.Queue[ProcessEvent], *,
                     deadline: float | None = None) -> AsyncIterator[ProcessEvent]:
        """The process's events until its end, its ``deadline`` (loop time; ``kill_at`` kills it then) or an
        ``overflow``, with a ``keepalive`` after each quiet spell (writing it is how a client that went away is
        noticed). The process is not killed when the caller stops listening."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                if queue in process.overflowed and queue.empty():
                    yield ProcessEvent("overflow")
                    return
                wait = KEEPALIVE if deadline is None else min(KEEPALIVE, deadline - loop.time())
                if wait <= 0:
                    return
                try:
                    event = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        return
                    yield ProcessEvent("keepalive")
                    continue
                yield event
                if event.kind == "end":
                    return
        finally:
            process.listeners.discard(queue)
            process.overflowed.discard(queue)

    async def write(self, process: Process, data: str, *, eof: bool = False) -> None:
        await self.session.write_command_stdin(process.command.id, data, eof=eof)

    async def kill(self, process: Process) -> None:
        await self.session.kill_command(process.command.id)

    def close(self) -> None:
        """The sandbox is gone (or the server stops): every stream still open hears its process's end now."""
        for process in self.by_pid.values():
            self._announce(process)
        for watcher in list(self._watchers):
            watcher.cancel()


def _shell_command(cmd: str, args: list[str], cwd: str | None) -> tuple[str, str | None]:
    """The ``sh -c`` line that runs E2B's ``cmd args…`` (exec'd: no extra shell waits on it), and its cwd.

    A cwd in the workspace is the command's own (relative) cwd; any other directory is entered first, inside the
    sandbox, where the sandbox's own file-system view decides what exists.
    """
    line = "exec " + shlex.join([cmd, *args])
    if cwd is None:
        return line, None
    try:
        return line, workspace_relative(cwd) or None
    except SandlotError:
        return f"cd {shlex.quote(cwd)} && {line}", None
