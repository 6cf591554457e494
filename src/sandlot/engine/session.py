"""Sessions: a persistent interpreter, like a notebook kernel.

Variables, imports and files carry over from cell to cell. Calls run one at a
time, in arrival order (``asyncio.Lock`` is fair). A cell that times out is
interrupted (KeyboardInterrupt, state kept) when the interpreter responds; when
it must be killed instead (memory, a hard kill, unresponsive), the session's
next call gets a fresh interpreter with the same workspace, files intact, and
says so with ``restarted: true``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._config import Limits
from .._errors import ClosedError
from .._models import ExecutionResult, Output
from .code import check_code

if TYPE_CHECKING:
    from .collector import EventCallback
    from .engine import Engine
    from .sandbox import Sandbox


class Cell:
    """One executed cell, for the notebook export."""

    def __init__(self, execution_count: int, code: str, outputs: list[Output]) -> None:
        self.execution_count = execution_count
        self.code = code
        self.outputs = outputs


class Session:
    """A stateful sandbox. Get one from ``Engine.create_session``."""

    def __init__(self, engine: Engine, sandbox: Sandbox, *, limits: Limits, idle_timeout: float,
                 env: dict[str, str], tools: list[str] | None = None, tenant: str | None = None) -> None:
        self.id = "ses_" + secrets.token_hex(12)
        self.created_at = datetime.now(UTC)
        self.limits = limits
        self.idle_timeout = idle_timeout
        self.execution_count = 0
        self.history: list[Cell] = []
        self.closed = False
        self._engine = engine
        self._sandbox: Sandbox | None = sandbox
        self._env = env
        self._env_sent = False
        self._restart_pending = False
        self._lock = asyncio.Lock()
        self._started_mono = time.monotonic()
        self._last_used = self._started_mono
        self.tenant = tenant
        """Whose session this is: its interpreters run in that tenant's cpu group."""
        self.tool_names = tools
        """The host tools this session's code may call (None: all registered ones)."""
        self.uid = sandbox.uid
        self.workspace = sandbox.workspace

    def __repr__(self) -> str:
        return f"<Session {self.id} cells={self.execution_count} busy={self._lock.locked()}>"

    @property
    def expires_at(self) -> datetime:
        remaining = min(self._last_used + self.idle_timeout,
                        self._started_mono + self._engine.config.session_max_lifetime) - time.monotonic()
        return datetime.now(UTC) + timedelta(seconds=max(0.0, remaining))

    def expired(self, now: float) -> bool:
        if self._lock.locked():
            return False  # never expire in the middle of a cell
        return (now - self._last_used > self.idle_timeout
                or now - self._started_mono > self._engine.config.session_max_lifetime)

    async def execute(self, code: str, *, timeout: float | None = None,
                      on_event: EventCallback | None = None) -> ExecutionResult:
        """Run a cell; user-code failures come back as data in the result."""
        check_code(code)
        limits = self.limits.override(self._engine.config.max_limits, timeout=timeout)
        async with self._lock:
            if self.closed:
                raise ClosedError(f"session {self.id} is closed")
            self._last_used = time.monotonic()
            restarted = False
            idle = self._sandbox
            if idle is not None and idle.doomed:
                # It died while the session was idle (its zygote went, or it was killed from outside).
                self._sandbox = None
                self._restart_pending = True
                await self._engine.retire_session_sandbox(idle)
            if self._sandbox is None:
                self._sandbox = await self._engine.start_session_sandbox(self.limits, self.uid, self.workspace,
                                                                         self.tenant)
                self._env_sent = False
                restarted = self._restart_pending
            self._restart_pending = False
            self.execution_count += 1
            sandbox = self._sandbox
            try:
                outcome = await sandbox.run(
                    code, count=self.execution_count, limits=limits, env=None if self._env_sent else self._env,
                    on_event=on_event, interrupt_grace=self._engine.config.interrupt_grace,
                    tools=self._engine.tool_broker(self.tool_names),
                )
            finally:
                self._env_sent = True
                self._last_used = time.monotonic()
                if sandbox.doomed:
                    # Killed (memory, hard timeout, crash, a cancelled call): the next call gets a fresh interpreter.
                    self._sandbox = None
                    self._restart_pending = True
                    await self._engine.retire_session_sandbox(sandbox)
            result = self._engine.result(outcome, execution_count=self.execution_count, restarted=restarted)
            self.history.append(Cell(self.execution_count, code, result.outputs))
            self._engine.raise_if_lost(sandbox)
            return result

    def live_figures(self) -> dict[str, Any]:
        """What the session uses now (``GET /v1/sessions/{id}/metrics``): its interpreter's CPU, memory and
        processes (none while it has no interpreter), and the bytes in its workspace."""
        sandbox = self._sandbox
        figures: dict[str, Any] = {"running": self._lock.locked(), "interpreter": sandbox is not None and not sandbox.doomed}
        empty: dict[str, Any] = {"cpu_ms": 0.0, "memory_bytes": 0, "peak_memory_bytes": None, "pids": 0}
        figures.update(sandbox.live_figures() if sandbox is not None and not sandbox.doomed else empty)
        figures["workspace_bytes"] = self.workspace.used_bytes()
        return figures

    async def interrupt(self) -> None:
        """Stop the running cell, if any (KeyboardInterrupt inside)."""
        if self._sandbox is not None and self._lock.locked():
            self._sandbox.interrupt()

    async def close(self) -> None:
        """End the session: kill its interpreter, then give back its workspace and uid (the engine calls this)."""
        self.closed = True
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            sandbox.kill("session closed")
        async with self._lock:  # let a cell that is running see its sandbox die, then clean up
            if sandbox is not None:
                await self._engine.retire_session_sandbox(sandbox)
            self._engine.release_session_resources(self.uid, self.workspace)

    def info(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at.isoformat(), "expires_at": self.expires_at.isoformat(),
                "execution_count": self.execution_count}
