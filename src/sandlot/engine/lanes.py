"""A lane: one named environment's zygote and warm pool, beside the default environment's.

The default environment's zygote and pool are the engine's own (``engine.py``: the adaptive pool, the fair
hand-out). Each named environment gets a ``Lane``, which costs nothing until its first request: then it
starts its zygote (under its own ``ZygoteSupervisor``: a dead zygote here is this lane's problem, restarted
with the same backoff, and the other lanes go on) and keeps ``pool_size`` sandboxes warm from then on.

Sandboxes, uids, cgroups and ``max_sandboxes`` are shared with the default environment through the one
``SandboxFactory``. A lane's pool adapts as the default one does (``pool.PoolState``): a request that finds it
empty starts a sandbox on demand and raises the pool's target by one, up to the environment's
``pool_max_size``, and an idle spell brings it back to ``pool_size`` (the engine's reaper calls
``shrink_if_idle``). The hand-out's queues are the default pool's; every lane's sandboxes count in its tenants'
holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._config import Limits
from .._errors import CapacityError, ClosedError, ResourceExhaustedError, RestartingError, SetupError, SpawnError
from ..environments import Environment, interpreter
from .factory import NetworkSpec, SandboxFactory
from .pool import REFILL_QUIET, PoolState, max_target
from .sandbox import Sandbox, can_retarget
from .supervisor import ZygoteSupervisor

log = logging.getLogger("sandlot")

SPAWN_ATTEMPTS = 5
REFILL_BACKOFF_MAX = 5.0


@dataclass(frozen=True)
class SharedQueue:
    """How a lane's sandboxes serve requests queued in the engine's hand-out (the lean zygote's): its refills wait
    for a quiet spell after ``last_take()`` as the default pool's do (``REFILL_QUIET``), start sandboxes for the
    ``waiting()`` requests one of them would do for, and call ``ready()`` when one is in the pool (the engine
    hands it over) and ``stalled()`` when it cannot make one for them (its zygote died, or a refill found every
    sandbox ``max_sandboxes`` allows alive): the default pool serves them meanwhile."""

    last_take: Callable[[], float]
    waiting: Callable[[], int]
    ready: Callable[[], None]
    stalled: Callable[[], None]


class Lane:
    """One named environment's zygote (started at its first use) and its warm pool."""

    def __init__(self, environment: Environment, factory: SandboxFactory, *, label: str | None = None,
                 make_supervisor: Callable[[Callable[[], Awaitable[None]]], ZygoteSupervisor] | None = None,
                 queue: SharedQueue | None = None) -> None:
        """``make_supervisor`` (given the lane's ``on_lost``) makes its zygote's supervisor when that is not the
        named environment's own (the lean zygote's); ``label`` names the lane in log lines; ``queue``: its
        sandboxes also serve requests queued in the engine's hand-out."""
        self.environment = environment
        self.label = label or f"environment {environment.name}"
        self._factory = factory
        self._make_supervisor = make_supervisor or self._environment_supervisor
        self._queue = queue
        config = factory.config
        self.pool: PoolState[Sandbox] = PoolState(
            environment.pool_size, shrink_after=config.pool_shrink_after,
            max_target=max_target(environment.pool_size, environment.pool_max_size, config.max_sandboxes))
        self.supervisor: ZygoteSupervisor | None = None
        self._starting: asyncio.Future[ZygoteSupervisor] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wakeup = asyncio.Event()
        self.refill_error: str | None = None
        self.start_error: str | None = None
        """Why the last start of its zygote failed (a preload missing from the venv, say); the next request tries again."""

    def __repr__(self) -> str:
        state = self.supervisor.state if self.supervisor is not None else "unused"
        return f"<Lane {self.environment.name} zygote={state} pool={self.pool!r}>"

    @property
    def started(self) -> bool:
        return self.supervisor is not None and self.supervisor.state != "starting"

    async def up(self) -> ZygoteSupervisor:
        """The lane's supervisor, its zygote started at the first call (concurrent first calls share one start;
        after a failed start, the next call tries again)."""
        if self.supervisor is not None and self._starting is None:
            return self.supervisor
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        starting = self._starting
        try:
            return await asyncio.shield(starting)
        finally:
            if starting.done() and self._starting is starting:
                self._starting = None

    def _environment_supervisor(self, on_lost: Callable[[], Awaitable[None]]) -> ZygoteSupervisor:
        env = self.environment
        assert env.info is not None, "the registry probes every named environment at engine start"
        return self._factory.lane_supervisor(
            environment=env.name, python=env.python, preload=list(env.preload),
            ro_dirs=interpreter.visible_dirs(env.info), deny_modules=list(env.modules.deny),
            allow_modules=None if env.modules.allow is None else list(env.modules.allow), on_lost=on_lost)

    def start_soon(self) -> None:
        """Start its zygote in the background (for a lane whose callers do not wait for it: the lean zygote's);
        a start that fails is logged, and ``start_error`` says why."""
        async def start() -> None:
            with contextlib.suppress(SetupError, RestartingError, ClosedError, SpawnError):
                await self.up()

        self._spawn(start())

    async def _start(self) -> ZygoteSupervisor:
        env = self.environment
        supervisor = self._make_supervisor(self._zygote_lost)
        self.supervisor = supervisor
        try:
            await supervisor.start()
        except BaseException as exc:
            self.supervisor = None
            self._factory.lane_supervisors.remove(supervisor)
            await supervisor.stop()
            if isinstance(exc, SetupError) and not self._factory.closed:
                self.start_error = str(exc)
                log.error("sandlot: %s: %s", self.label, exc)
                raise SetupError(f"environment {env.name!r}: {exc}") from None
            raise
        self.start_error = None
        log.info("sandlot: %s: zygote ready (%s, preloaded %s in %.0f ms)", self.label, env.python,
                 ",".join(env.preload) or "nothing", supervisor.zygote.info.get("preload_ms", 0.0))
        supervisor.on_up.append(self._wakeup.set)
        self._spawn(supervisor.watch())
        self._spawn(self._refill_loop(supervisor))
        self._wakeup.set()
        return supervisor

    async def take(self, limits: Limits, tenant: str | None, *, network: NetworkSpec | None = None) -> Sandbox:
        """A sandbox of this environment for ``limits``: a pooled one when one fits, else one started now
        (always for ``network``: the pool's sandboxes have no TCP sockets)."""
        supervisor = await self.up()
        factory = self._factory
        if network is None and can_retarget(self.environment.limits, limits, has_cgroup=factory.cgroups is not None):
            sandbox = self.take_ready()  # a miss makes the next burst find a bigger pool
            if sandbox is not None:
                return sandbox
        for attempt in range(1, SPAWN_ATTEMPTS + 1):
            try:
                return await factory.start(limits, tenant=tenant, supervisor=supervisor, network=network)
            except SpawnError as exc:
                if attempt == SPAWN_ATTEMPTS:
                    raise
                log.warning("sandlot: %s: a sandbox failed to start (%s); trying another", self.label, exc)
        raise AssertionError("unreachable")

    def serves(self, limits: Limits) -> bool:
        """Whether its zygote is up and its pooled sandboxes can be held to ``limits``."""
        supervisor = self.supervisor
        return (supervisor is not None and supervisor.state == "up" and self._starting is None
                and can_retarget(self.environment.limits, limits, has_cgroup=self._factory.cgroups is not None))

    def owns(self, sandbox: Sandbox) -> bool:
        return self.supervisor is not None and sandbox.zygote is self.supervisor.zygote

    def take_ready(self) -> Sandbox | None:
        """A pooled sandbox if one is ready now, else None (and the pool grows for the next burst). ``take``'s
        first step; the lean zygote's runs, which have somewhere else to go, call it alone (after ``serves``)."""
        sandbox = self.pool.take()
        for dead in self.pool.take_dead():
            self._spawn(self._factory.destroy(dead, keep_workspace=False))
        self._wakeup.set()
        if sandbox is None:
            self.pool.missed(time.monotonic())
            return None
        if sandbox.cgroup is not None:
            sandbox.cgroup.taken()
        return sandbox

    async def _refill_loop(self, supervisor: ZygoteSupervisor) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.pool.failing:
                await asyncio.sleep(min(REFILL_BACKOFF_MAX, 0.05 * 2 ** min(self.pool.failing, 7)))
            waiting = 0
            if self._queue is not None:
                await self._quiet_spell(self._queue)
                waiting = self._queue.waiting()
            for _ in range(self.pool.starts_needed(waiting)):
                self._spawn(self._refill_one(supervisor))

    async def _quiet_spell(self, queue: SharedQueue) -> None:
        while len(self.pool.ready) + self.pool.starting >= self.pool.target / 2 and not queue.waiting():
            quiet_for = time.monotonic() - queue.last_take()
            if quiet_for >= REFILL_QUIET:
                return
            await asyncio.sleep(REFILL_QUIET - quiet_for)

    async def _refill_one(self, supervisor: ZygoteSupervisor) -> None:
        sandbox = None
        abandoned = False
        try:
            if len(self._factory.alive) < self._factory.config.max_sandboxes:
                sandbox = await self._factory.start(self.environment.limits, supervisor=supervisor)
            else:
                abandoned = True  # all in use; the next take wakes the refill again
        except (RestartingError, ClosedError):
            abandoned = True
        except (SpawnError, CapacityError, ResourceExhaustedError) as exc:
            log.warning("sandlot: %s: could not refill its pool: %s", self.label, exc)
            self.refill_error = str(exc)
        finally:
            if abandoned:
                self.pool.start_abandoned()
                if self._queue is not None:
                    self._queue.stalled()
            else:
                self.pool.start_finished(sandbox)
                if sandbox is not None:
                    self.refill_error = None
                    if self._queue is not None:
                        self._queue.ready()
                self._wakeup.set()

    def shrink_if_idle(self, now: float) -> None:
        """A pool grown by a burst falls back toward ``pool_size`` after an idle spell (``PoolState``)."""
        for surplus in self.pool.shrink_if_idle(now):
            self._spawn(self._factory.destroy(surplus, keep_workspace=False))

    async def _zygote_lost(self) -> None:
        for sandbox in self.pool.drain():
            self._spawn(self._factory.destroy(sandbox, keep_workspace=False))
        self._wakeup.set()
        if self._queue is not None:
            self._queue.stalled()

    def health(self) -> dict[str, Any]:
        """This lane's part of ``/healthz``: its zygote's state, or ``unused`` before its first request."""
        if self.supervisor is None:
            return {"state": "failed" if self.start_error else "unused", "pid": None, "restarts": 0,
                    "last_error": self.start_error, "pool_ready": 0, "pool_target": 0}
        snapshot = self.supervisor.snapshot()
        return {"state": snapshot.state, "pid": snapshot.pid, "restarts": snapshot.restarts,
                "last_error": snapshot.last_error or self.refill_error, "pool_ready": len(self.pool.ready),
                "pool_target": self.pool.target}

    def wake(self) -> None:
        self._wakeup.set()

    async def close(self) -> None:
        """Stop its refills and watch, and a start under way (the factory kills its sandboxes and stops its
        zygote)."""
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.cancel()
            with contextlib.suppress(BaseException):
                await starting
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
