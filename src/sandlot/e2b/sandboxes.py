"""The registry of E2B sandboxes: each one is a sandlot session, plus what E2B adds to it.

An E2B sandbox's id is its session's id, so ``GET /v1/sessions/{id}`` shows the same sandbox. E2B adds an access
token for in-sandbox traffic (``envdAccessToken``, checked on every call to the daemon), a traffic token (``trafficAccessToken``,
which the SDKs send on the code interpreter's context calls), metadata, a timeout after
which the sandbox is killed (E2B's default is 300 s; ``POST /sandboxes/{id}/timeout`` moves it), code contexts
(each a sandlot session of its own) and processes (sandlot commands, numbered as pids).

A killed sandbox is remembered (a bounded set of ids) so that the daemon's ``/health`` can answer 502 for it, as
E2B's proxy does: the SDK's ``is_running()`` reads that.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._errors import NotFoundError, SandlotError
from .process import Processes

if TYPE_CHECKING:
    from ..engine import Engine, Session

log = logging.getLogger("sandlot.e2b")

DEFAULT_TIMEOUT = 300.0
"""Seconds a sandbox lives without a ``timeout`` of its own (E2B's default)."""
MAX_REMEMBERED_KILLED = 10_000


@dataclass
class Context:
    """A code context: a named interpreter. The default one is the sandbox's own session."""

    id: str
    session: Session
    cwd: str = "/home/user"
    language: str = "python"


@dataclass
class E2BSandbox:
    id: str
    session: Session
    owner: str
    template: str
    access_token: str
    traffic_token: str
    metadata: dict[str, str]
    started_at: float
    end_at: float
    processes: Processes
    env: dict[str, str] = field(default_factory=dict)
    contexts: dict[str, Context] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None

    def token_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.access_token.encode())

    def traffic_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.traffic_token.encode())


CHECKED_SANDBOX: contextvars.ContextVar[E2BSandbox | None] = contextvars.ContextVar("e2b_checked_sandbox", default=None)
"""The sandbox whose id and access token the dispatcher checked for the call in progress (the Connect services read
it: their request headers are not consulted again)."""


class Sandboxes:
    """Every live E2B sandbox of one server, by id."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.live: dict[str, E2BSandbox] = {}
        self.killed: OrderedDict[str, None] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<Sandboxes live={len(self.live)} killed={len(self.killed)}>"

    async def create(self, *, owner: str, template: str, timeout: float | None, metadata: dict[str, str],
                     env: dict[str, str], network: list[str] | None = None) -> E2BSandbox:
        # Not paused when idle (which would end its background processes): an E2B sandbox runs until its timeout.
        session = await self.engine.create_session(env=env, owner=owner, network=network,
                                                   idle_timeout=self.engine.config.session_max_lifetime)
        now = time.time()
        sandbox = E2BSandbox(id=session.id, session=session, owner=owner, template=template,
                             access_token=secrets.token_hex(16), traffic_token=secrets.token_hex(16), metadata=metadata,
                             started_at=now, end_at=now,
                             processes=Processes(session), env=dict(env))
        sandbox.contexts["default"] = Context("default", session)
        self.live[sandbox.id] = sandbox
        self.set_timeout(sandbox, DEFAULT_TIMEOUT if timeout is None else timeout)
        return sandbox

    def get(self, sandbox_id: str, owner: str | None = None) -> E2BSandbox:
        """The live sandbox (for ``owner``, when given), or 404; one whose session ended meanwhile is forgotten."""
        sandbox = self.live.get(sandbox_id)
        if sandbox is not None and sandbox.session.closed:
            self._forget(sandbox)
            sandbox = None
        if sandbox is None or (owner is not None and sandbox.owner != owner):
            raise NotFoundError(f"sandbox {sandbox_id!r} not found")
        return sandbox

    def owned(self, owner: str) -> list[E2BSandbox]:
        return [s for s in list(self.live.values()) if s.owner == owner and not s.session.closed]

    def set_timeout(self, sandbox: E2BSandbox, seconds: float) -> None:
        """Kill the sandbox ``seconds`` from now (E2B's timeout: a deadline, not an idle timer)."""
        if sandbox.timer is not None:
            sandbox.timer.cancel()
        sandbox.end_at = time.time() + seconds
        loop = asyncio.get_running_loop()
        sandbox.timer = loop.call_later(seconds, self._expire, sandbox.id)

    def _expire(self, sandbox_id: str) -> None:
        if sandbox_id in self.live:
            log.info("E2B sandbox %s reached its timeout: killed", sandbox_id)
            task = asyncio.get_running_loop().create_task(self._kill_quietly(sandbox_id))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _kill_quietly(self, sandbox_id: str) -> None:
        with contextlib.suppress(SandlotError):
            await self.kill(sandbox_id)

    def session_ended(self, session_id: str) -> None:
        """A sandbox's session was deleted through sandlot's own API (or its lifetime ran out): the E2B sandbox is
        gone too, with its contexts."""
        sandbox = self.live.get(session_id)
        if sandbox is None:
            return
        self._forget(sandbox)
        task = asyncio.get_running_loop().create_task(self._after_session_ended(sandbox))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _after_session_ended(self, sandbox: E2BSandbox) -> None:
        running = [process.command.finished for process in sandbox.processes.running()]
        if running:  # the session's close ends its commands: let their streams hear how, then end any left
            await asyncio.wait(running, timeout=5)
        sandbox.processes.close()
        await self._close_contexts(sandbox)

    async def _close_contexts(self, sandbox: E2BSandbox) -> None:
        for context in list(sandbox.contexts.values()):
            if context.session.id != sandbox.id:
                with contextlib.suppress(SandlotError):
                    await self.engine.close_session(context.session.id)

    async def kill(self, sandbox_id: str, owner: str | None = None) -> None:
        sandbox = self.get(sandbox_id, owner)
        self._forget(sandbox)
        with contextlib.suppress(SandlotError):
            await self.engine.close_session(sandbox.id)
        sandbox.processes.close()  # after the session: its commands have ended, and their streams say so
        await self._close_contexts(sandbox)

    def _forget(self, sandbox: E2BSandbox) -> None:
        if sandbox.timer is not None:
            sandbox.timer.cancel()
        self.live.pop(sandbox.id, None)
        self.killed[sandbox.id] = None
        while len(self.killed) > MAX_REMEMBERED_KILLED:
            self.killed.popitem(last=False)

    async def close(self) -> None:
        """The server is stopping: forget the timers (the engine ends the sessions itself)."""
        for sandbox in list(self.live.values()):
            if sandbox.timer is not None:
                sandbox.timer.cancel()
            sandbox.processes.close()
        for task in list(self._closing):
            task.cancel()
