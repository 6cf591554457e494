"""Sessions: a persistent interpreter, like a notebook kernel, that outlives its process.

Variables, imports and files carry over from cell to cell. Calls run one at a
time, in arrival order (``asyncio.Lock`` is fair). A cell that times out is
interrupted (KeyboardInterrupt, state kept) when the interpreter responds.

A session is its record (``durable.store``), its volume (``durable.volumes``)
and, while it runs, an interpreter. After each cell (snapshots ``every_cell``)
the interpreter saves its names into the workspace once the result has left;
the next cell waits for that save, the reply does not. Pausing ends the
interpreter and leaves the record and the volume; the next cell (or a resume)
takes a sandbox from the pool, attaches the volume and loads the saved names,
and its result says what came back (``resumed``). An interpreter that was
killed (memory, a hard kill, its zygote) comes back the same way, with
``restarted: true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from .. import tracing
from .._config import Limits
from .._errors import ClosedError, InvalidRequestError, NotFoundError
from .._models import CommandResult, ExecutionResult, Output, Resumed, parse_output
from ..durable import archive
from ..durable.store import PAUSED, RUNNING, SessionRecord
from ..egress import Policy
from .code import check_code
from .commands import KILL_GRACE, MAX_KEPT, Command, check_command, command_cwd

if TYPE_CHECKING:
    from ..durable.volumes import Volume
    from .collector import EventCallback
    from .engine import Engine
    from .sandbox import Sandbox
    from .workspace import Workspace

log = logging.getLogger("sandlot")

SAVE_TIMEOUT = 60.0
"""Seconds a snapshot may take before the interpreter is given up on (and the session restarts from the last one)."""
SHUTDOWN_SAVE_TIMEOUT = 15.0
"""Seconds a shutdown waits for each idle session's pending save (they are waited for side by side)."""
ATTACH_TIMEOUT = 60.0
UNMOUNT_AFTER = 60.0
"""Seconds a paused session's volume stays mounted after its files were last used (a loop device each)."""


class Cell:
    """One executed cell, for the notebook export."""

    def __init__(self, execution_count: int, code: str, outputs: list[Output]) -> None:
        self.execution_count = execution_count
        self.code = code
        self.outputs = outputs


def granted_network(policy: Policy | None) -> list[str] | None:
    """A session's egress policy as it is kept on disk and in archives: its entries' text (None: no network)."""
    return None if policy is None else [entry.text for entry in policy.entries]


class Session:
    """A stateful sandbox. Get one from ``Engine.create_session``."""

    def __init__(self, engine: Engine, record: SessionRecord, volume: Volume, *, limits: Limits) -> None:
        self.id = record.id
        self.owner = record.owner
        self.created_at = datetime.fromtimestamp(record.created_at, UTC)
        self.limits = limits
        self.idle_timeout = record.idle_timeout
        self.execution_count = record.execution_count
        self.closed = False
        self.state = record.state
        self.last_active = record.last_active_at
        """Wall-clock time of the last call (it survives restarts, unlike a monotonic clock)."""
        self.snapshot = record.snapshot
        self.volume = volume
        self.tool_names = record.tools
        """The host tools this session's code may call (None: all registered ones)."""
        self.environment = record.environment
        """The environment its interpreters run in; a restart or a resume comes back in the same one."""
        self.network: Policy | None
        """Its egress policy: what it was granted, kept on disk, less what the operator no longer allows."""
        self.network_dropped: list[str]
        """The granted destinations this server does not allow (its allow list narrowed since, egress off)."""
        self.network, self.network_dropped = engine.kept_network(record.network)
        if self.network_dropped:
            log.warning("sandlot: session %s keeps its network without %s: the operator no longer allows %s",
                        record.id, ", ".join(self.network_dropped), "them" if len(self.network_dropped) > 1 else "it")
        self._engine = engine
        self._env = dict(record.env)
        self._env_sent = False
        self._sandbox: Sandbox | None = None
        self._restart_pending = False
        self._resumed: dict[str, Any] | None = None
        """What the last restore brought back, for the next result."""
        self._lock = asyncio.Lock()
        self.commands: dict[str, Command] = {}
        """Shell commands run here, by id: the running ones and the last ``MAX_KEPT`` finished."""
        self._command_timers: set[asyncio.Task[None]] = set()
        if record.damaged:
            self._resumed = {"restored": [], "lost": [{"name": "*", "reason": "the session's record was damaged on disk "
                                                       f"({', '.join(record.damaged)}); defaults were used"}]}

    @property
    def tenant(self) -> str | None:
        """Whose session this is for fairness (its owner): its interpreters are handed out and weighted as theirs."""
        return self.owner or None

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.state} cells={self.execution_count} busy={self._lock.locked()}>"

    # ---- time ------------------------------------------------------------------

    @property
    def expires_at(self) -> datetime:
        """When the session ends its current state if nobody uses it: a running one is paused
        (``idle_timeout``), a paused one deleted (``paused_ttl``)."""
        config = self._engine.config
        wait = config.paused_ttl if self.state == PAUSED else self.idle_timeout
        deadline = min(self.last_active + wait, self.created_at.timestamp() + config.session_max_lifetime)
        return datetime.fromtimestamp(deadline, UTC)

    def idle_for(self, now: float) -> float:
        return 0.0 if self._lock.locked() else now - self.last_active

    def should_pause(self, now: float) -> bool:
        return self.state == RUNNING and not self._lock.locked() and now - self.last_active > self.idle_timeout

    def should_unmount(self, now: float) -> bool:
        """A paused session's volume, mounted for file access, goes off the host after a minute unused."""
        return self.state == PAUSED and not self._lock.locked() and now - self.last_active > UNMOUNT_AFTER and \
            self.volume.image is not None and self.volume.mounted()

    async def unmount_if_idle(self) -> None:
        async with self._lock:  # checked again under the lock: a call may have come meanwhile
            if self.state == PAUSED and not self.closed and time.time() - self.last_active > UNMOUNT_AFTER:
                await asyncio.to_thread(self._engine.volumes.unmount, self.volume)

    def should_delete(self, now: float) -> bool:
        if self._lock.locked():
            return False
        config = self._engine.config
        return (self.state == PAUSED and now - self.last_active > config.paused_ttl) or \
            now - self.created_at.timestamp() > config.session_max_lifetime

    # ---- cells -------------------------------------------------------------------

    @tracing.traced_run("session", figures=True)
    async def execute(self, code: str, *, timeout: float | None = None,
                      on_event: EventCallback | None = None) -> ExecutionResult:
        """Run a cell; user-code failures come back as data in the result."""
        check_code(code)
        limits = self.limits.override(self._engine.config.max_limits, timeout=timeout)
        store = self._engine.session_store
        async with self._lock:
            tracing.note_elapsed("sandlot.queue_wait_ms")  # behind the session's earlier cells
            if self.closed:
                raise ClosedError(f"session {self.id} is closed")
            self._touch()
            # No wait for the last cell's save: the interpreter reads requests in order, so this cell
            # runs after that save whatever happens; only pause, fork and export wait for it.
            restarted = await self._ensure_interpreter()
            resumed, self._resumed = self._resumed, None
            self.execution_count += 1
            count = self.execution_count
            sandbox = self._sandbox
            assert sandbox is not None
            store.cell_started(self.id, count, code)
            save = self._save_request() if self._engine.config.snapshots == "every_cell" else None
            try:
                outcome = await sandbox.run(
                    code, count=count, limits=limits, env=None if self._env_sent else self._env,
                    on_event=on_event, interrupt_grace=self._engine.config.interrupt_grace,
                    tools=self._engine.tool_broker(self.tool_names), save=save,
                )
            except BaseException:
                store.cell_finished(self.id, count, [], "error")
                raise
            finally:
                self._env_sent = True
                self._touch()
                if sandbox.doomed:
                    # Killed (memory, hard timeout, crash, a cancelled call): the next call gets a fresh
                    # interpreter, with the state of the last cell that completed.
                    await self._retire()
                    self._restart_pending = True
            result = self._engine.result(outcome, execution_count=count, restarted=restarted)
            if sandbox.egress is not None:
                result.network = sandbox.egress.take_records()
            if resumed is not None:
                result.resumed = Resumed.model_validate(resumed)
            store.cell_finished(self.id, count, [o.model_dump(mode="json") for o in result.outputs], result.status)
            self._engine.raise_if_lost(sandbox)
            return result

    # ---- shell commands ------------------------------------------------------------
    # A command takes its turn like a cell (the session's lock): it runs in the interpreter's sandbox,
    # on the same files, and one that waits for a cell sees what that cell wrote. A background command
    # holds the lock only to start; it then runs beside later cells and commands.

    async def run_command(self, cmd: str, *, cwd: str | None = None, env: dict[str, str] | None = None,
                          timeout: float | None = None, stdin: str | None = None,
                          on_event: EventCallback | None = None) -> CommandResult:
        """Run ``/bin/sh -c cmd`` in the session's sandbox to its end; a non-zero exit is data (``error``)."""
        check_command(cmd, stdin)
        limits = self.limits.override(self._engine.config.max_limits, timeout=timeout)
        async with self._lock:
            command, sandbox, where = await self._new_command(cmd, cwd, background=False, on_event=on_event)
            try:
                await sandbox.commands.run(command, timeout=limits.timeout, cwd=where, env={**self._env, **(env or {})},
                                           stdin=stdin, kill_sandbox_on_timeout=False)
            finally:
                self._touch()
                if sandbox.doomed:  # it took the interpreter with it: the next call gets a fresh one
                    await self._retire()
                    self._restart_pending = True
            self._engine.raise_if_lost(sandbox)
            result = command.result()
            if sandbox.egress is not None:
                result.network = sandbox.egress.take_records()
            return result

    async def start_command(self, cmd: str, *, cwd: str | None = None, env: dict[str, str] | None = None,
                            timeout: float | None = None, on_event: EventCallback | None = None) -> Command:
        """Start ``/bin/sh -c cmd`` in the background; its stdin stays open. Without ``timeout`` it runs
        until it ends, is killed, or the session's interpreter ends (pause, idle pause, delete). ``on_event``
        hears its output as it comes (the E2B face streams it)."""
        check_command(cmd)
        if timeout is not None:
            self.limits.override(self._engine.config.max_limits, timeout=timeout)  # refused as a cell's would be
        async with self._lock:
            command, sandbox, where = await self._new_command(cmd, cwd, background=True, on_event=on_event)
            await sandbox.commands.start(command, cwd=where, env={**self._env, **(env or {})}, stdin=None)
        if timeout is not None:
            timer = asyncio.get_running_loop().create_task(self._kill_at(command, timeout))
            self._command_timers.add(timer)
            timer.add_done_callback(self._command_timers.discard)
        return command

    def command(self, command_id: str) -> Command:
        command = self.commands.get(command_id)
        if command is None:
            raise NotFoundError(f"no command {command_id!r} in session {self.id}")
        return command

    async def write_command_stdin(self, command_id: str, data: str, *, eof: bool = False) -> None:
        """Send ``data`` to a running background command's stdin (``eof``: then close it)."""
        check_command(data)
        command = self.command(command_id)
        if not command.running or command.sandbox is None:
            raise InvalidRequestError(f"command {command_id} has ended ({command.status})")
        self._touch()
        await command.sandbox.write_stdin(command, data, eof=eof)

    async def kill_command(self, command_id: str) -> CommandResult:
        """SIGKILL a command and everything it started; returns its final state."""
        command = self.command(command_id)
        if command.running and command.sandbox is not None:
            await command.sandbox.kill(command)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(command.finished), KILL_GRACE)
        return command.result()

    async def _kill_at(self, command: Command, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(command.finished), timeout)
            return
        if command.running and command.sandbox is not None:
            command.timed_out = True
            await command.sandbox.kill(command)

    async def _new_command(self, cmd: str, cwd: str | None, *, background: bool,
                           on_event: EventCallback | None) -> tuple[Command, Sandbox, str]:
        """A command record, and the sandbox and directory it runs in (called with the lock held)."""
        where = command_cwd(cwd)
        if self.closed:
            raise ClosedError(f"session {self.id} is closed")
        self._touch()
        await self._ensure_interpreter()
        sandbox = self._sandbox
        assert sandbox is not None
        sandbox.used = True
        command = Command(cmd, background=background, output_size=self.limits.output_size, on_event=on_event)
        self.commands[command.id] = command
        finished = [key for key, kept in self.commands.items() if not kept.running]
        for key in finished[:max(0, len(finished) - MAX_KEPT)]:
            del self.commands[key]
        return command, sandbox, where

    @property
    def history(self) -> list[Cell]:
        """The cells run so far, from the store (for the notebook)."""
        return [Cell(c.execution_count, c.code, [parse_output(o) for o in c.outputs])
                for c in self._engine.session_store.cells(self.id)]

    # ---- pause and resume -----------------------------------------------------------

    async def pause(self) -> None:
        """Save the state (if not saved already), end the interpreter, keep the record and the files."""
        async with self._lock:
            if self.closed:
                raise ClosedError(f"session {self.id} is closed")
            await self._state_on_disk()
            await self._retire()
            self._restart_pending = False
            await asyncio.to_thread(self._engine.volumes.unmount, self.volume)
            self._set_state(PAUSED)

    async def resume(self) -> None:
        """Bring the interpreter back now (a cell would do it too)."""
        async with self._lock:
            if self.closed:
                raise ClosedError(f"session {self.id} is closed")
            self._touch()
            await self._ensure_interpreter()

    async def _ensure_interpreter(self) -> bool:
        """An interpreter for the next cell; True when it replaces one that was killed."""
        idle = self._sandbox
        if idle is not None and idle.doomed:
            # It died while the session was idle (its zygote went, or it was killed from outside).
            await self._retire()
            self._restart_pending = True
        if self._sandbox is not None:
            return False
        restarted = self._restart_pending
        # Always asked to restore: the interpreter finds the newest saved state in the workspace itself (the
        # record may lag behind it after a crash), and an empty workspace costs it one listdir.
        sandbox, reply = await self._engine.start_session_interpreter(self, restore=True)
        sandbox.on_saved = self._note_saved
        self._sandbox = sandbox
        self._env_sent = False
        self._restart_pending = False
        earlier = self._resumed["lost"] if self._resumed is not None else []  # a damaged record, say
        if reply is None:
            lost = [{"name": "*", "reason": "the interpreter did not load the saved state"}]
            self._resumed = {"restored": [], "lost": earlier + lost}
        elif reply.restored or reply.lost or earlier:
            self._resumed = {"restored": reply.restored, "lost": earlier + [entry.model_dump() for entry in reply.lost]}
        self._set_state(RUNNING)
        return restarted

    # ---- snapshots ---------------------------------------------------------------

    def _save_request(self) -> dict[str, Any]:
        return {"dir": self._engine.sandbox_workspace_path(self), "max_bytes": self._engine.config.snapshot_max_bytes}

    def _note_saved(self, saved: Any) -> None:
        if saved is None:
            return  # the interpreter died or was too slow: the last snapshot on disk stays the one to load
        if self.snapshot is not None and saved.count < int(self.snapshot.get("count") or 0):
            return  # an earlier cell's, answered late
        self.snapshot = {"count": saved.count, "names": saved.names, "lost": [e.model_dump() for e in saved.lost],
                         "bytes": saved.bytes, "skipped": saved.skipped, "saved_at": time.time()}
        if saved.skipped:
            log.info("sandlot: session %s: state not saved after cell %d: %s", self.id, saved.count, saved.skipped)
        self._engine.session_store.update(self.id, snapshot=self.snapshot)

    async def _state_on_disk(self) -> None:
        """Make the saved state in the workspace the state of the last cell (pause, fork, export): wait for the
        save that followed it, or, with snapshots ``on_pause``, save now."""
        await self._settle_save()
        sandbox = self._sandbox
        if sandbox is not None and not sandbox.doomed and self._engine.config.snapshots == "on_pause":
            request = self._save_request()
            self._note_saved(await sandbox.save(request["dir"], request["max_bytes"], SAVE_TIMEOUT))

    async def _settle_save(self) -> None:
        """Wait for the save that followed the last cell (pause, fork and export must not race it)."""
        sandbox = self._sandbox
        if sandbox is not None and sandbox.save_pending and not sandbox.doomed:
            self._note_saved(await sandbox.sync(SAVE_TIMEOUT))

    async def fork(self, new_id: str, owner: str) -> tuple[SessionRecord, Volume]:
        """A copy of this session as it is now: its files, and its saved state (which is in its files)."""
        async with self._lock:
            if self.closed:
                raise ClosedError(f"session {self.id} is closed")
            await self._state_on_disk()
            engine = self._engine
            await asyncio.to_thread(engine.volumes.mount, self.volume)
            volume = await asyncio.to_thread(engine.volumes.copy, self.volume, new_id, size_bytes=self.limits.workspace_size,
                                             owner_uid=self.workspace.owner_uid)
            now = time.time()
            record = SessionRecord(id=new_id, owner=owner, state=PAUSED, created_at=now, last_active_at=now,
                                   execution_count=self.execution_count, idle_timeout=self.idle_timeout,
                                   limits=self.limits.model_dump(), env=dict(self._env), tools=self.tool_names,
                                   snapshot=self.snapshot, environment=self.environment,
                                   network=granted_network(self.network))
            return record, volume

    async def export(self, out: IO[bytes]) -> None:
        """Write this session as an archive (``durable.archive``) to ``out``, as it is after its last cell."""
        async with self._lock:
            if self.closed:
                raise ClosedError(f"session {self.id} is closed")
            await self._state_on_disk()
            await asyncio.to_thread(self._engine.volumes.mount, self.volume)
            manifest = {"session": {"execution_count": self.execution_count, "idle_timeout": self.idle_timeout,
                                    "limits": self.limits.model_dump(), "env": dict(self._env), "tools": self.tool_names,
                                    "snapshot": self.snapshot, "environment": self.environment,
                                    "network": granted_network(self.network)},
                        "cells": [{"execution_count": c.execution_count, "code": c.code, "outputs": c.outputs,
                                   "status": c.status} for c in self._engine.session_store.cells(self.id)]}
            await asyncio.to_thread(archive.export, self.volume.path, manifest, out)

    # ---- files, figures, teardown ---------------------------------------------------

    async def open_workspace(self) -> Workspace:
        """The session's files, readable and writable whether it runs or is paused."""
        if self.closed:
            raise ClosedError(f"session {self.id} is closed")
        self._touch()
        if not self.volume.mounted():
            await asyncio.to_thread(self._engine.volumes.mount, self.volume)
        return self.workspace

    @property
    def workspace(self) -> Workspace:
        """The workspace as the host sees it; files the host writes go to the owner of its top directory."""
        try:
            owner = os.stat(self.volume.path).st_uid
        except OSError:
            owner = os.geteuid()
        return self.volume.workspace(owner)

    def live_figures(self) -> dict[str, Any]:
        """What the session uses now (``GET /v1/sessions/{id}/metrics``): its interpreter's CPU, memory and
        processes (none while it has no interpreter), and the bytes in its workspace."""
        sandbox = self._sandbox
        figures: dict[str, Any] = {"running": self._lock.locked(), "interpreter": sandbox is not None and not sandbox.doomed}
        empty: dict[str, Any] = {"cpu_ms": 0.0, "memory_bytes": 0, "peak_memory_bytes": None, "pids": 0}
        figures.update(sandbox.live_figures() if sandbox is not None and not sandbox.doomed else empty)
        figures["workspace_bytes"] = self.workspace.used_bytes() if self.volume.mounted() else 0
        return figures

    async def interrupt(self) -> None:
        """Stop the running cell, if any (KeyboardInterrupt inside)."""
        if self._sandbox is not None and self._lock.locked():
            self._sandbox.interrupt()

    async def close(self) -> None:
        """End the session: kill its interpreter, then remove its record and files (the engine calls this)."""
        self.closed = True
        for timer in list(self._command_timers):
            timer.cancel()
        sandbox = self._sandbox
        if sandbox is not None:
            sandbox.kill("session closed")
        async with self._lock:  # let a cell that is running see its sandbox die, then clean up
            await self._settle_save()
            await self._retire()
            await self._engine.forget_session(self)

    async def detach(self) -> None:
        """End the interpreter but keep everything on disk (the engine is shutting down). The interpreter is
        retired here, not left to the factory's shutdown: that would take its workspace with it.

        The save that follows a cell's reply belongs to that cell: killing the interpreter during it would lose
        the names the client was told it has. So an idle session's pending save is waited for (bounded by
        ``SHUTDOWN_SAVE_TIMEOUT``); a cell still running when the shutdown grace is over is not."""
        self.closed = True
        sandbox = self._sandbox
        if sandbox is not None and not self._lock.locked() and sandbox.save_pending and not sandbox.doomed:
            async with self._lock:
                saved = await sandbox.sync(SHUTDOWN_SAVE_TIMEOUT)
                if saved is None:
                    log.warning("sandlot: session %s: its last save did not finish within %.0f s of the shutdown; "
                                "it comes back from the save before", self.id, SHUTDOWN_SAVE_TIMEOUT)
                self._note_saved(saved)
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            sandbox.kill("shutdown")
            await self._engine.retire_session_interpreter(self, sandbox)

    async def _retire(self) -> None:
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            await self._engine.retire_session_interpreter(self, sandbox)

    def _touch(self) -> None:
        self.last_active = time.time()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
        self._engine.session_store.update(self.id, state=state, last_active_at=self.last_active)

    def info(self) -> dict[str, Any]:
        info = {"id": self.id, "created_at": self.created_at.isoformat(), "expires_at": self.expires_at.isoformat(),
                "execution_count": self.execution_count, "state": self.state,
                "last_active_at": datetime.fromtimestamp(self.last_active, UTC).isoformat(),
                "environment": self.environment}
        if self.network is not None or self.network_dropped:
            info["network"] = {"allow": granted_network(self.network) or [], "dropped": list(self.network_dropped)}
        return info
