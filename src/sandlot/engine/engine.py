"""The engine: zygote, warm pool, stateless runs and sessions, in one object.

``Engine`` is async and owns every sandbox. ``execute`` takes a sandbox from
the warm pool (or starts one on demand when the pool is empty), runs the code,
and destroys the sandbox in the background: the request never waits for a
fork or an exit. Sessions adopt a pooled sandbox and keep it. A sandbox is
never reused across runs or sessions.

Life of a sandbox, as the engine sees it::

    uid + cgroup + workspace ──spawn──▶ starting ──ready──▶ pool ──take──▶ run ──▶ destroyed
                                                                  └─────▶ session (kept; after a kill,
                                                                          a new one with the same workspace)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sandlot_runtime.spec import LANDLOCK, NAMESPACES

from .. import tracing
from .._config import EngineConfig, Limits
from .._errors import (
    CapacityError,
    ClosedError,
    InvalidRequestError,
    NotFoundError,
    ResourceExhaustedError,
    RestartingError,
    SpawnError,
)
from .._models import AttachedMessage, CommandResult, ExecutionResult, LostName, ToolCallRecord, Usage
from ..durable import archive
from ..durable.datadir import DataDir
from ..durable.store import PAUSED, RUNNING, CellRecord, SessionRecord, SessionStore
from ..durable.volumes import Volume, VolumeManager, images_available
from ..egress import Egress, Policy
from ..environments import EnvironmentRegistry
from ..tools import ToolBroker, ToolRegistry
from . import host, resources
from .code import check_code
from .collector import EventCallback, RunOutcome
from .commands import Command, check_command, command_cwd
from .factory import NetworkSpec, SandboxFactory
from .handout import MAX_WAIT, Handout
from .imports import standard_library_only
from .instances import Instance
from .lanes import Lane, SharedQueue
from .pool import REFILL_QUIET, PoolState, max_target
from .sandbox import Sandbox, can_retarget
from .session import ATTACH_TIMEOUT, Session, granted_network

log = logging.getLogger("sandlot")

WORKSPACE_IN_SANDBOX = "/workspace"
SPAWN_ATTEMPTS = 5
PLACE_AFTER = 0.05
"""A one-shot run still running after this long moves to its tenant's cpu group. Most runs are over by then,
and never pay for the move: a cgroup v1 move waits for an RCU grace period after an idle spell, and while it
waits every fork and exit on the host waits too (measured once here, on a loaded host: idle p50 5.3 ms
without the move, 8.5 ms with it at the start of every run)."""
LEAN_RETRY = 30.0
"""Seconds between tries to start the lean zygote after a start that failed (its runs go to the default one)."""
TEARDOWN_MAX_DELAY = 0.25
"""A finished one-shot sandbox is killed in a gap between requests too (killing
unmaps ~80 MB of copy-on-write memory: milliseconds of kernel CPU), but never
later than this."""


def pool_max_size(config: EngineConfig) -> int:
    """The most the default environment's pool may grow to (``pool.max_target``)."""
    return max_target(config.pool_size, config.pool_max_size, config.max_sandboxes)


class Engine:
    """Runs untrusted Python in contained sandboxes. Use ``async with Engine() as engine``."""

    def __init__(self, config: EngineConfig | None = None, tools: ToolRegistry | None = None) -> None:
        self.config = config or EngineConfig()
        self.tools = tools or ToolRegistry()
        self.on_tool_call: list[Callable[[ToolCallRecord], None]] = []
        self.isolation: str | None = None
        self.support: host.HostSupport | None = None
        self.sessions: dict[str, Session] = {}
        self.on_session_closed: list[Callable[[str], None]] = []
        self.runs = 0
        self._pool: PoolState[Sandbox] = PoolState(self.config.pool_size, max_target=pool_max_size(self.config),
                                                   shrink_after=self.config.pool_shrink_after)
        self._handout: Handout[Sandbox] = Handout(self.config.max_sandboxes)
        self._factory: SandboxFactory | None = None
        self._instance = Instance(self.config.state_dir)
        self._background: set[asyncio.Task[Any]] = set()
        self._pool_wakeup = asyncio.Event()
        self._closed = False
        self._started = False
        self._last_take = 0.0
        self._store: SessionStore | None = None
        self._volumes: VolumeManager | None = None
        self._data_dir: DataDir | None = None
        self._refill_ran_out = False
        """The last refill failed for want of a uid or a place under max_sandboxes (freed by any teardown)."""
        self._refill_error: str | None = None
        """Why the last pool refill failed (None once one succeeds): what health says ran out."""
        self.environments = EnvironmentRegistry(self.config)
        self._lanes: dict[str, Lane] = {}
        """The named environments' zygotes and pools (``lanes``), by name; each starts at its first use."""
        self._lean: Lane | None = None
        """The lean zygote's lane (no preloads) for one-shot runs that import only the standard library; None when
        ``lean_pool_size`` is 0 or nothing is preloaded (it would be the default zygote again)."""
        self._preloaded = frozenset(m.partition(".")[0] for m in self.config.preload)
        self._lean_tried = -LEAN_RETRY
        self.egress = Egress(self.config.egress, self.config.cache_dir)
        """Network for the runs that ask for it (``sandlot.egress``): checked here, served by a proxy per sandbox."""

    def __repr__(self) -> str:
        return (f"<Engine isolation={self.isolation} alive={self.sandboxes_alive} sessions={len(self.sessions)} "
                f"pool={self._pool!r} handout={self._handout!r}>")

    @property
    def pool(self) -> PoolState[Sandbox]:
        return self._pool

    @property
    def warm_sandboxes(self) -> int:
        """Sandboxes waiting in the default pool and the lean zygote's (health's ``pool_ready``: an idle server
        has as many sandboxes alive as these and its sessions')."""
        return len(self._pool.ready) + (len(self._lean.pool.ready) if self._lean is not None else 0)

    @property
    def lean_pool(self) -> PoolState[Sandbox] | None:
        """The lean zygote's pool (None when there is no lean zygote, or before its first run started it)."""
        return self._lean.pool if self._lean is not None and self._lean.supervisor is not None else None

    @property
    def handout(self) -> Handout[Sandbox]:
        return self._handout

    @property
    def sandboxes_alive(self) -> int:
        return len(self._factory.alive) if self._factory is not None else 0

    @property
    def stats(self) -> dict[str, int]:
        """Counters: runs, sandboxes started and destroyed."""
        made = self._factory.stats if self._factory is not None else {"sandboxes_started": 0, "sandboxes_destroyed": 0}
        return {"runs": self.runs, **made}

    @property
    def running(self) -> bool:
        """Started, not closed, and still supervising its zygote."""
        return self._started and not self._closed and self._factory is not None and \
            self._factory.supervisor.state != "stopped"

    @property
    def zygote_pid(self) -> int | None:
        return self._factory.zygote.pid if self._factory is not None else None

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.support = await asyncio.to_thread(host.probe)
        self.isolation = host.choose_isolation(self.config.isolation, self.support)
        if self.isolation == LANDLOCK:
            log.warning("sandlot: DEGRADED ISOLATION. No namespaces or cgroups here: sandboxes use Landlock, "
                        "seccomp and rlimits only, and share the host's pid and network view. "
                        "Run `sandlot doctor` for details; `--isolation strict` refuses to run like this.")
        await asyncio.to_thread(self.environments.probe)  # a bad interpreter path fails the start, not a request
        self._instance.create()
        try:
            self._factory = SandboxFactory(self.config, self.isolation, self._instance)
            self._lanes = {env.name: Lane(env, self._factory) for env in self.environments.named()}
            if self.config.lean_pool_size and self.config.preload:
                lean = dataclasses.replace(self.environments.default, preload=(), pool_size=self.config.lean_pool_size,
                                           pool_max_size=None)
                self._lean = Lane(lean, self._factory, label="the lean zygote",
                                  make_supervisor=self._factory.lean_supervisor,
                                  queue=SharedQueue(last_take=lambda: self._last_take,
                                                    waiting=lambda: self._handout.lean_waiting,
                                                    ready=self._hand_out_lean, stalled=self._lean_stalled))
            await self._factory.start_zygote()
        except BaseException:
            if self._factory is not None:
                await self._factory.remove_leftovers()
            self._instance.remove()
            raise
        log.info("sandlot: zygote ready (isolation=%s, preloaded %s in %.0f ms)", self.isolation,
                 ",".join(self.config.preload) or "nothing", self._factory.zygote.info.get("preload_ms", 0.0))
        try:
            self._open_sessions()
        except BaseException:
            await self._factory.close()
            self._after_close_sessions()
            self._instance.remove()
            raise
        self._factory.on_zygote_lost.append(self._after_zygote_lost)
        self._factory.supervisor.on_up.append(self._pool_wakeup.set)
        self._spawn_background(self._factory.supervisor.watch())
        self._spawn_background(self._refill_loop())
        self._pool_wakeup.set()
        self._spawn_background(self._session_reaper())

    async def close(self) -> None:
        """Stop everything: every sandbox, the zygote, and all our mounts, cgroups and directories."""
        if self._closed:
            return
        self._closed = True
        if self._factory is not None:
            self._factory.closed = True  # teardowns cancelled below release their uids quietly
        self._handout.fail_all(lambda: ClosedError("the engine is closed"))
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(BaseException):
                await task
        factory = self._factory
        if factory is None:
            return
        for lane in self._every_lane():
            await lane.close()
        try:
            await self._close_sessions()
            await factory.close()
        finally:
            # Even when the shutdown is cut short (cancelled): the store closed, the volumes unmounted, the
            # directory gone; what a cancelled teardown left is removed by the next start.
            self._after_close_sessions()
            self._instance.remove()

    # ---- stateless runs -------------------------------------------------

    @tracing.traced_run("execute")
    async def execute(self, code: str, *, timeout: float | None = None, files: Mapping[str, bytes] | None = None,
                      env: Mapping[str, str] | None = None, on_event: EventCallback | None = None,
                      tools: Iterable[str] | None = None, limits: Mapping[str, float | int] | None = None,
                      tenant: str | None = None, begun: asyncio.Event | None = None,
                      environment: str | None = None, network: Sequence[str] | None = None) -> ExecutionResult:
        """Run ``code`` in a fresh single-use sandbox, destroyed afterwards.

        ``tools`` limits which registered host tools the code may call (default: all).
        ``limits`` overrides ``Limits`` fields for this run, up to the server's ``max_limits``.
        ``tenant`` (the server passes the API key's principal) is whose run it is: scarce sandboxes are
        handed out fairly between tenants, and each tenant's sandboxes share one cpu group.
        ``begun`` is set once the run has its sandbox: a refusal (no capacity, zygote restarting) comes before it.
        ``environment`` names the environment to run in (``sandlot.environments``; None: the default one).
        ``network`` (destinations, a subset of the operator's ``egress.allow``) gives the run network through
        the egress proxy; the result's ``network`` lists every connection. None: no network at all.
        """
        factory = self._open_factory()
        check_code(code)
        run_limits = self.run_limits(timeout, limits, environment)
        broker = self.tool_broker(tools)
        policy = self.network_policy(network)
        for attempt in range(1, SPAWN_ATTEMPTS + 1):
            sandbox = await self._sandbox_for(run_limits, tenant, environment,
                                              network=self._network_spec(policy, WORKSPACE_IN_SANDBOX),
                                              lean=self._lean is not None and policy is None
                                              and standard_library_only(code, preloaded=self._preloaded))
            if begun is not None:
                begun.set()
            if tenant is not None:
                self._spawn_background(self._place_later(factory, sandbox, tenant))
            try:
                if policy is not None:
                    await self.attach_egress(sandbox, policy)
                for path, data in (files or {}).items():
                    sandbox.workspace.write(path, data)
                outcome = await sandbox.run(code, count=1, limits=run_limits, env=dict(env or {}),
                                            on_event=on_event, tools=broker)
                connections = await sandbox.egress.close() if sandbox.egress is not None else []
                break
            except SpawnError:
                # It died after it was handed out and before the code started (killed from
                # outside): not the code's doing, so it runs in another sandbox.
                if attempt == SPAWN_ATTEMPTS:
                    raise
            finally:
                self._handout.release(tenant or "")
                # Never on the request path: teardown and refill happen after the run, in the
                # background, so the fork and containment of the next sandbox do not compete with it.
                self._spawn_background(self._destroy_soon(factory, sandbox))
                self._pool_wakeup.set()
        self.raise_if_lost(sandbox)
        result = self.result(outcome, execution_count=1)
        result.network = connections
        return result

    def network_policy(self, network: Sequence[str] | None) -> Policy | None:
        """The egress policy of a request that asks for ``network`` (None: none); a 400 when it may not."""
        if network is None:
            return None
        return self.egress.policy_for(network, isolated_network=self.isolation == NAMESPACES)

    def kept_network(self, granted: Sequence[str] | None) -> tuple[Policy | None, list[str]]:
        """A saved session's policy (its entries' text) as this server grants it now, and what it loses: the
        operator's allow list may have narrowed since it was granted (``Egress.kept``)."""
        if granted is None:
            return None, []
        return self.egress.kept(granted, isolated_network=self.isolation == NAMESPACES)

    def _network_spec(self, policy: Policy | None, workspace: str) -> NetworkSpec | None:
        if policy is None:
            return None
        return NetworkSpec(env=self.egress.sandbox_env(workspace), ro_dirs=self.egress.sandbox_ro_dirs())

    async def attach_egress(self, sandbox: Sandbox, policy: Policy) -> None:
        """Start the proxy that serves ``sandbox``, in its network namespace (before any code runs there)."""
        try:
            sandbox.egress = await self.egress.attach(sandbox.pidfd, policy)
        except OSError as exc:
            raise SpawnError(f"the egress proxy could not be set up: {exc}") from None

    async def run_command(self, cmd: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                          timeout: float | None = None, stdin: str | None = None,
                          files: Mapping[str, bytes] | None = None, limits: Mapping[str, float | int] | None = None,
                          on_event: EventCallback | None = None, tenant: str | None = None,
                          begun: asyncio.Event | None = None, network: Sequence[str] | None = None) -> CommandResult:
        """Run ``/bin/sh -c cmd`` once in a fresh single-use sandbox, destroyed afterwards (``engine.commands``);
        ``tenant``, ``begun`` and ``network`` as for ``execute``."""
        factory = self._open_factory()
        check_command(cmd, stdin)
        run_limits = self.run_limits(timeout, limits)
        where = command_cwd(cwd)
        policy = self.network_policy(network)
        sandbox = await self._sandbox_for(run_limits, tenant, network=self._network_spec(policy, WORKSPACE_IN_SANDBOX))
        if begun is not None:
            begun.set()
        if tenant is not None:
            self._spawn_background(self._place_later(factory, sandbox, tenant))
        connections = []
        try:
            if policy is not None:
                await self.attach_egress(sandbox, policy)
            for path, data in (files or {}).items():
                sandbox.workspace.write(path, data)
            sandbox.used = True
            command = Command(cmd, background=False, output_size=run_limits.output_size, on_event=on_event)
            await sandbox.commands.run(command, timeout=run_limits.timeout, cwd=where, env=dict(env or {}),
                                       stdin=stdin, kill_sandbox_on_timeout=True)
            if sandbox.egress is not None:
                connections = await sandbox.egress.close()
        finally:
            self._handout.release(tenant or "")
            self._spawn_background(self._destroy_soon(factory, sandbox))
            self._pool_wakeup.set()
        self.raise_if_lost(sandbox)
        self.runs += 1
        result = command.result()
        result.network = connections
        return result

    def raise_if_lost(self, sandbox: Sandbox) -> None:
        """A run whose sandbox went down with its zygote failed for the server's reasons: 503, retry."""
        if sandbox.lost is not None:
            retry = self._factory.supervisor.retry_after() if self._factory is not None else 1.0
            raise RestartingError(f"the run was lost: {sandbox.lost}; retry", retry_after=retry)

    def run_limits(self, timeout: float | None, changes: Mapping[str, float | int] | None,
                   environment: str | None = None) -> Limits:
        """The environment's default limits with a request's changes, refused beyond ``max_limits``; an unknown
        environment is an ``InvalidRequestError`` naming the known ones."""
        return self.config.run_limits(timeout, changes, base=self.environments.get(environment).limits)

    @tracing.timed("sandlot.sandbox_take_ms")
    async def _sandbox_for(self, limits: Limits, tenant: str | None, environment: str | None = None, *,
                           network: NetworkSpec | None = None, lean: bool = False) -> Sandbox:
        """A sandbox held to ``limits`` and counted as ``tenant``'s (the caller releases it): from the pool
        (retargeted), fairly when the pool runs short, or started on demand for limits no pooled one can take,
        and for ``network`` (the pool's sandboxes have no TCP sockets: another seccomp program). A named
        ``environment``'s comes from its lane (its zygote started now if this is its first use). ``lean`` (the
        code imports only the standard library): the lean zygote's when one is ready and no run waits for one;
        else a ready default one while nothing queues, or a place in the queue for whichever pool serves it
        first (docs/architecture.md, the lean zygote)."""
        factory = self._open_factory()
        who = tenant or ""
        lane = self._lane(environment)
        lean = lean and lane is None and network is None and self._lean_serves(limits)
        sandbox = self._take_lean() if lean and not self._handout.lean_waiting else None
        if sandbox is not None:
            pass  # the lean zygote's
        elif lane is not None:
            sandbox = await lane.take(limits, tenant, network=network)
        elif network is None and can_retarget(self.config.limits, limits, has_cgroup=factory.cgroups is not None):
            sandbox = None
            # A run the lean zygote could serve takes a ready default sandbox by the hand-out's rules too: at once
            # while nothing is scarce, or the reserve when its tenant holds none (fairness). A tenant whose runs
            # queue waits behind them, for a lean sandbox (cheaper to make: the CPU is short).
            if self._handout.may_take(who, len(self._pool.ready), self._pool.starting):
                sandbox = self._take()
            if sandbox is None:
                if lean:  # the lean pool grows, and its refills start a sandbox for this run
                    assert self._lean is not None
                    self._lean.pool.missed(time.monotonic())
                else:
                    self._pool.missed(time.monotonic())
                sandbox = await self._wait_for_pooled(who, lean=lean)
        else:
            self._pool_wakeup.set()
            sandbox = await self._start_on_demand(factory, limits, tenant, network=network)
        self._handout.hold(who)
        try:
            if limits.workspace_size != sandbox.limits.workspace_size:
                await factory.resize_workspace(sandbox.workspace, limits.workspace_size)
            sandbox.retarget(limits)
        except BaseException as exc:
            self._handout.release(who)
            self._spawn_background(factory.destroy(sandbox, keep_workspace=False))
            if isinstance(exc, OSError):
                raise InvalidRequestError(f"these limits cannot be applied: {exc.strerror}") from None
            raise
        return sandbox

    def _lean_serves(self, limits: Limits) -> bool:
        """Whether a run the lean zygote could serve (its code imports only the standard library) may have one of
        its sandboxes. The first such run starts the lean zygote (in the background: that run goes to the default
        pool), and one every ``LEAN_RETRY`` seconds tries again after a start that failed."""
        lane = self._lean
        if lane is None:
            return False
        if lane.supervisor is None and time.monotonic() - self._lean_tried >= LEAN_RETRY:
            self._lean_tried = time.monotonic()
            lane.start_soon()
        return lane.serves(limits)

    def _take_lean(self) -> Sandbox | None:
        """A ready sandbox of the lean zygote's, if there is one (None: the run goes to the default pool, where it
        waits, if it must, for whichever pool has one for it first: ``_hand_out_lean``)."""
        assert self._lean is not None
        sandbox = self._lean.take_ready()
        if sandbox is not None:
            self._last_take = time.monotonic()  # refills and teardowns of both pools wait for a quiet spell
        return sandbox

    def _waiting_for_default(self) -> int:
        """The waiting requests the default pool starts sandboxes for: those only it can serve, and the others too
        while the lean zygote cannot (they would wait for it in vain)."""
        waiting = self._handout.waiting
        return waiting if self._lean_blocked() else waiting - self._handout.lean_waiting

    def _lean_blocked(self) -> bool:
        """Whether the lean zygote cannot make a sandbox for a run now: there is none, it is not up, or every
        sandbox ``max_sandboxes`` allows is alive. Then its runs take the default pool's as any other run does;
        else they take only its sandboxes (cheaper to make: the default pool is not refilled for them)."""
        lane = self._lean
        return (lane is None or lane.supervisor is None or lane.supervisor.state != "up"
                or len(self._open_factory().alive) >= self.config.max_sandboxes)

    def _lean_stalled(self) -> None:
        """The lean zygote died, or a refill of its pool found no room: the default pool serves its waiters."""
        self._hand_out()
        self._pool_wakeup.set()

    def _hand_out_lean(self) -> None:
        """Ready lean sandboxes go to the waiting requests that said one will do, fairly (see ``handout``)."""
        lane = self._lean
        while lane is not None and self._handout.lean_waiting and lane.pool.ready:
            sandbox = self._take_lean()
            if sandbox is None:
                return
            waiter = self._handout.next_waiter(len(lane.pool.ready) + 1, lane.pool.starting, lean=True)
            if waiter is None:
                lane.pool.give_back(sandbox)  # the reserve, kept for another tenant
                return
            waiter.set_result(sandbox)

    async def _place_later(self, factory: SandboxFactory, sandbox: Sandbox, tenant: str) -> None:
        await asyncio.sleep(PLACE_AFTER)
        factory.place(sandbox, tenant)  # nothing to do if its teardown has begun

    async def _wait_for_pooled(self, who: str, *, lean: bool = False) -> Sandbox:
        """Wait in ``who``'s queue for the next pooled sandbox the hand-out gives it (see ``handout``): the
        default pool's, or with ``lean`` the lean zygote's if one is ready first."""
        future = self._handout.enqueue(who, lean=lean)
        if lean:
            assert self._lean is not None
            self._lean.wake()
        self._pool_wakeup.set()
        try:
            return await asyncio.wait_for(asyncio.shield(future), MAX_WAIT)
        except BaseException as exc:
            if future.done():
                if not future.cancelled() and future.exception() is None:
                    self._give_back(future.result())  # handed over just as this request gave up
            else:
                self._handout.withdraw(who, future)
                future.cancel()
            if isinstance(exc, TimeoutError):
                supervisor = self._open_factory().supervisor
                if supervisor.state != "up":
                    raise RestartingError(f"the zygote is {supervisor.state.replace('_', ' ')}; retry shortly",
                                          retry_after=supervisor.retry_after()) from None
                if self._pool.failing:
                    raise SpawnError(f"sandboxes fail to start: {self._refill_error}") from None
                raise CapacityError(f"no sandbox became free within {MAX_WAIT:.0f} s", retry_after=1.0) from None
            raise

    def _give_back(self, sandbox: Sandbox) -> None:
        if self._lean is not None and self._lean.owns(sandbox):
            self._lean.pool.give_back(sandbox)
            self._hand_out_lean()
            return
        self._pool.give_back(sandbox)
        self._hand_out()

    def _hand_out(self) -> None:
        """Ready sandboxes go to the requests waiting for one, fairly (see ``handout``); while the lean zygote is
        up, only to those it cannot serve (the others wait for its sandboxes, which cost less to make)."""
        while self._handout.waiting and self._pool.ready:
            sandbox = self._take()
            if sandbox is None:
                return
            waiter = self._handout.next_waiter(len(self._pool.ready) + 1, self._pool.starting,
                                               lean=None if self._lean_blocked() else False)
            if waiter is None:
                self._pool.give_back(sandbox)  # the reserve, kept for another tenant
                return
            waiter.set_result(sandbox)

    async def _start_on_demand(self, factory: SandboxFactory, limits: Limits, tenant: str | None, *,
                               network: NetworkSpec | None = None) -> Sandbox:
        """A fresh sandbox for a request; one that dies before it is ready (killed from outside, a
        transient fault) is replaced, a few times, rather than failing the request."""
        for attempt in range(1, SPAWN_ATTEMPTS + 1):
            try:
                return await factory.start(limits, tenant=tenant, network=network)
            except SpawnError as exc:
                if attempt == SPAWN_ATTEMPTS:
                    raise
                log.warning("sandlot: a sandbox failed to start (%s); trying another", exc)
        raise AssertionError("unreachable")

    def result(self, outcome: RunOutcome, *, execution_count: int, restarted: bool = False) -> ExecutionResult:
        """A finished run as the ``ExecutionResult`` every face returns."""
        self.runs += 1
        return ExecutionResult(
            id="exe_" + secrets.token_hex(8), status=outcome.status, stdout=outcome.stdout, stderr=outcome.stderr,
            outputs=outcome.outputs, error=outcome.error, execution_count=execution_count,
            duration_ms=round(outcome.duration_ms, 3),
            usage=Usage(cpu_ms=round(outcome.cpu_ms, 3), peak_memory_bytes=outcome.peak_memory_bytes),
            truncated=outcome.truncated, restarted=restarted, tool_calls=outcome.tool_calls,
        )

    def tool_broker(self, names: Iterable[str] | None) -> ToolBroker | None:
        """A run's access to the registered tools (None when there are none)."""
        if not len(self.tools):
            if names:
                raise InvalidRequestError("this server has no tools")
            return None
        return ToolBroker(self.tools.subset(names), max_calls=self.config.max_tool_calls,
                          max_total_time=self.config.max_tool_time, on_call=self._tool_called)

    def _tool_called(self, record: ToolCallRecord) -> None:
        for callback in self.on_tool_call:
            callback(record)

    # ---- sessions ---------------------------------------------------------

    async def create_session(self, *, timeout: float | None = None, idle_timeout: float | None = None,
                             env: Mapping[str, str] | None = None, tools: Iterable[str] | None = None,
                             limits: Mapping[str, float | int] | None = None, owner: str = "",
                             environment: str | None = None, network: Sequence[str] | None = None) -> Session:
        """A persistent interpreter whose variables and files carry over between cells, and across restarts.

        ``tools`` limits which registered host tools its code may call (default: all);
        ``limits`` overrides ``Limits`` fields for the session, up to ``max_limits``;
        ``owner`` is who may use it (the server's principal), kept with the session; it is also the session's
        tenant (fairness: its interpreters are handed out and weighted as that tenant's);
        ``environment`` is the environment its interpreters run in, now and after every restart or resume.
        ``network``: as for ``execute``, for every cell and command (each cell's result lists its connections).
        """
        self._open_factory()
        policy = self.network_policy(network)
        tool_names = None if tools is None else list(tools)
        self.tools.subset(tool_names)  # refuse unknown names now, not at the first call
        session_limits = self.run_limits(timeout, limits, environment)
        environment = self.environments.get(environment).name
        idle = min(idle_timeout or self.config.session_idle_timeout, self.config.session_max_lifetime)
        now = time.time()
        record = SessionRecord(id="ses_" + secrets.token_hex(12), owner=owner, state=RUNNING, created_at=now,
                               last_active_at=now, execution_count=0, idle_timeout=idle,
                               limits=session_limits.model_dump(), env=dict(env or {}), tools=tool_names, snapshot=None,
                               environment=environment, network=granted_network(policy))
        try:
            volume = await asyncio.to_thread(self.volumes.create, record.id, size_bytes=session_limits.workspace_size,
                                             owner_uid=0 if self.volumes.images else os.geteuid())
        except OSError as exc:
            raise resources.translate(exc) from None
        session = Session(self, record, volume, limits=session_limits)
        try:
            self.session_store.add(record)
            await session.resume()
        except BaseException:
            self.session_store.remove(record.id)
            await asyncio.to_thread(self.volumes.remove, volume)
            raise
        self.sessions[session.id] = session
        return session

    def get_session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None or session.closed:
            raise NotFoundError(f"no session {session_id!r}")
        return session

    async def close_session(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            raise NotFoundError(f"no session {session_id!r}")
        await self._end_session(session)

    async def fork_session(self, session_id: str, *, owner: str | None = None) -> Session:
        """A new, paused session whose files and saved state are a copy of ``session_id``'s now."""
        source = self.get_session(session_id)
        record, volume = await source.fork("ses_" + secrets.token_hex(12), owner if owner is not None else source.owner)
        try:
            self.session_store.add(record)
            self.session_store.copy_cells(source.id, record.id)
        except BaseException:
            self.session_store.remove(record.id)
            await asyncio.to_thread(self.volumes.remove, volume)
            raise
        forked = Session(self, record, volume, limits=source.limits)
        self.sessions[forked.id] = forked
        return forked

    async def import_session(self, data: bytes, *, owner: str) -> Session:
        """A new, paused session from an archive (``durable.archive``), checked as hostile input."""
        self._open_factory()
        manifest = await asyncio.to_thread(archive.read_manifest, data)
        described = manifest["session"]
        try:
            limits = Limits.model_validate(described.get("limits") or {}).override(self.config.max_limits)
            tools = described.get("tools")
            if tools is not None and not (isinstance(tools, list) and all(isinstance(t, str) for t in tools)):
                raise ValueError("tools must be a list of names")
            self.tools.subset(tools)
            env = described.get("env") or {}
            if not isinstance(env, dict):
                raise ValueError("env must be an object")
            environment = described.get("environment")
            if environment is not None and not isinstance(environment, str):
                raise ValueError("environment must be a name")
            network = described.get("network")
            if network is not None and not (isinstance(network, list) and all(isinstance(n, str) for n in network)):
                raise ValueError("network must be a list of destinations")
            snapshot = described.get("snapshot")
            cells = [CellRecord(int(c["execution_count"]), str(c["code"]), list(c["outputs"]), str(c["status"]))
                     for c in manifest.get("cells", [])]
            count = int(described.get("execution_count") or 0)
            idle = min(float(described.get("idle_timeout") or self.config.session_idle_timeout),
                       self.config.session_max_lifetime)
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidRequestError(f"the archive's session is not valid: {exc}") from None
        environment = self.environments.get(environment).name  # one this server does not have: a 400 naming its own
        # Granted by another server, maybe: only what this one allows is kept (on disk too), the rest said once.
        network_policy, network_dropped = self.kept_network(network)
        now = time.time()
        record = SessionRecord(id="ses_" + secrets.token_hex(12), owner=owner, state=PAUSED, created_at=now,
                               last_active_at=now, execution_count=count, idle_timeout=idle, limits=limits.model_dump(),
                               env={str(k): str(v) for k, v in env.items()}, tools=tools,
                               snapshot=snapshot if isinstance(snapshot, dict) else None, environment=environment,
                               network=granted_network(network_policy))
        volume = await asyncio.to_thread(self.volumes.create, record.id, size_bytes=limits.workspace_size,
                                         owner_uid=0 if self.volumes.images else os.geteuid())
        try:
            await asyncio.to_thread(archive.read_into, data, volume.workspace(os.geteuid()), max_bytes=limits.workspace_size)
            await asyncio.to_thread(self.volumes.unmount, volume)
            self.session_store.add(record)
            self.session_store.add_cells(record.id, cells)
        except BaseException:
            self.session_store.remove(record.id)
            await asyncio.to_thread(self.volumes.remove, volume)
            raise
        session = Session(self, record, volume, limits=limits)
        session.network_dropped = network_dropped
        self.sessions[session.id] = session
        return session

    async def adopt_sessions(self, data_dir: str) -> list[str]:
        """Take over the sessions of a dead engine's data directory (cluster failover, ``sandlot.cluster``).

        Each keeps its id, owner, files, history and saved state, and comes back paused: its next call resumes
        it from the state of its last completed cell and says what could not be restored; a cell that was
        running when that engine died is recorded as interrupted. The dead engine's directory lock is taken
        first, so a live engine's sessions are never taken (``SetupError``). Returns the ids adopted.
        """
        self._open_factory()
        other = DataDir(data_dir)
        other.lock()
        try:
            volumes = VolumeManager(os.path.join(data_dir, "sessions"), images=self.volumes.images)
            await asyncio.to_thread(volumes.unmount_all)  # the dead engine's mounts, when it died on this host
            store = SessionStore(os.path.join(data_dir, "sessions.db"))
            adopted = []
            try:
                store.recover()
                for record in store.sessions():
                    if record.id in self.sessions:
                        continue
                    target = self.volumes.volume(record.id)
                    await asyncio.to_thread(os.rename, volumes.volume(record.id).directory, target.directory)
                    record.state = PAUSED
                    self.session_store.add(record)
                    self.session_store.add_cells(record.id, store.cells(record.id))
                    store.remove(record.id)
                    self.sessions[record.id] = Session(self, record, target, limits=self._limits_of(record))
                    adopted.append(record.id)
            finally:
                store.close()
        finally:
            other.unlock()
        log.info("sandlot: adopted %d sessions from %s", len(adopted), data_dir)
        return adopted

    async def _end_session(self, session: Session) -> None:
        for callback in self.on_session_closed:
            callback(session.id)
        await session.close()  # its interpreter, if any, is released to the hand-out as it is retired

    # What a session asks of the engine: the doors between the two rooms.

    @tracing.timed("sandlot.sandbox_take_ms")
    async def start_session_interpreter(self, session: Session, *, restore: bool) -> tuple[Sandbox, Any]:
        """An interpreter on the session's volume, with its saved state loaded (``restore``): a pooled
        sandbox with the volume attached (namespaces), or one started on the volume. Returns it and the
        interpreter's ``attached`` reply. Saved state that kills the interpreter is not loaded again."""
        sandbox, reply = await self._interpreter_on(session, restore=restore)
        if reply is None and restore and sandbox.doomed:
            await self.retire_session_interpreter(session, sandbox)
            sandbox, _ = await self._interpreter_on(session, restore=False)
            reply = AttachedMessage(t="attached", id=None, restored=[], lost=[
                LostName(name="*", reason="loading the saved state ended the interpreter; it was not loaded")])
        if session.network is not None:
            try:
                await self.attach_egress(sandbox, session.network)
            except BaseException:
                await self.retire_session_interpreter(session, sandbox)
                raise
        return sandbox, reply

    async def _interpreter_on(self, session: Session, *, restore: bool) -> tuple[Sandbox, Any]:
        factory = self._open_factory()
        volume = session.volume
        try:
            await asyncio.to_thread(self.volumes.mount, volume)
        except OSError as exc:
            raise resources.translate(exc) from None
        tenant = session.tenant
        network = self._network_spec(session.network, self.sandbox_workspace_path(session))
        if self._attaches_volumes:
            # Held for the tenant until it is retired.
            sandbox = await self._sandbox_for(session.limits, tenant, session.environment, network=network)
            if tenant is not None:
                factory.place(sandbox, tenant)  # an interpreter is there for a while: into its tenant's group now
            self._pool_wakeup.set()
            try:
                await asyncio.to_thread(self._attach, volume, sandbox)
            except BaseException as exc:
                self._handout.release(tenant or "")
                self._spawn_background(factory.destroy(sandbox, keep_workspace=False))
                if isinstance(exc, OSError):
                    raise SpawnError(f"the session's workspace could not be attached: {exc.strerror or exc}") from None
                raise
        else:
            uid = factory.uids.take()
            try:
                await asyncio.to_thread(self.volumes.give_to, volume, uid)
                lane = self._lane(session.environment)
                supervisor = (await lane.up()) if lane is not None else None
                sandbox = await factory.start(session.limits, uid=uid, workspace=volume.workspace(uid), tenant=tenant,
                                              supervisor=supervisor, network=network)
            except BaseException:
                factory.uids.release(uid)
                raise
            self._handout.hold(tenant or "")
        reply = await sandbox.attach(self.sandbox_workspace_path(session), home=None if self._attaches_volumes else volume.path,
                                     restore=restore, timeout=ATTACH_TIMEOUT)
        return sandbox, reply

    def _attach(self, volume: Volume, sandbox: Sandbox) -> None:
        self.volumes.give_to(volume, sandbox.uid)
        self.volumes.attach(volume, sandbox.pid)

    @property
    def _attaches_volumes(self) -> bool:
        return self.volumes.images and self.isolation != LANDLOCK

    def sandbox_workspace_path(self, session: Session) -> str:
        """Where a session's interpreter sees its workspace."""
        return WORKSPACE_IN_SANDBOX if self._attaches_volumes else session.volume.path

    async def retire_session_interpreter(self, session: Session, sandbox: Sandbox) -> None:
        """Destroy a session's interpreter; its volume stays."""
        if self._factory is not None:
            await self._factory.destroy(sandbox, keep_workspace=sandbox.workspace.path == session.volume.path,
                                        keep_uid=False)
            self._handout.release(session.tenant or "")
            self._capacity_freed()

    def _capacity_freed(self) -> None:
        if self._refill_ran_out:
            # The refills failed for want of a uid or a place under max_sandboxes, and one was just freed: that
            # streak says nothing about now (with no pool to refill, no start would ever clear it).
            self._refill_ran_out = False
            self._pool.failing = 0
            self._refill_error = None
        if self._handout.waiting:
            self._pool_wakeup.set()  # a refill can start for a waiting request now
        if self._lean is not None and self._handout.lean_waiting:
            self._lean.wake()

    async def forget_session(self, session: Session) -> None:
        """A closed session's record and files go."""
        self.sessions.pop(session.id, None)
        self.session_store.remove(session.id)
        await asyncio.to_thread(self.volumes.remove, session.volume)

    @property
    def session_store(self) -> SessionStore:
        if self._store is None:
            raise ClosedError("the engine is not started")
        return self._store

    @property
    def volumes(self) -> VolumeManager:
        if self._volumes is None:
            raise ClosedError("the engine is not started")
        return self._volumes

    def _open_sessions(self) -> None:
        """Open the session store and bring back every session it holds, paused: no per-session work
        beyond reading its row until it is used."""
        assert self.isolation is not None
        data_dir = self.config.data_dir or os.path.join(self._instance.path, "data")
        self._data_dir = DataDir(data_dir)
        self._data_dir.lock()
        images = images_available()
        if os.geteuid() == 0 and not images:
            log.warning("sandlot: mkfs.ext4 (e2fsprogs) or mount was not found: session workspaces are plain "
                        "directories, capped per file (file_size) but not in total; install e2fsprogs for a hard cap")
        self._volumes = VolumeManager(os.path.join(data_dir, "sessions"), images=images)
        self._volumes.unmount_all()  # a crashed server's mounts
        self._store = SessionStore(os.path.join(data_dir, "sessions.db"))
        interrupted = self._store.recover()
        for record in self._store.sessions():
            limits = self._limits_of(record)
            self.sessions[record.id] = Session(self, record, self._volumes.volume(record.id), limits=limits)
        if self.sessions:
            log.info("sandlot: %d sessions kept in %s (%d had an interpreter when the last server stopped)",
                     len(self.sessions), data_dir, interrupted)

    def _limits_of(self, record: SessionRecord) -> Limits:
        try:
            return Limits.model_validate(record.limits).override(self.config.max_limits)
        except ValueError:
            record.damaged.append("limits")
            return self.config.limits

    async def _close_sessions(self) -> None:
        await asyncio.gather(*(session.detach() for session in list(self.sessions.values())), return_exceptions=True)
        self.sessions.clear()

    def _after_close_sessions(self) -> None:
        if self._volumes is not None:
            self._volumes.unmount_all()
        if self._store is not None:
            self._store.close()
        if self._data_dir is not None:
            self._data_dir.unlock()

    # ---- faults and health ---------------------------------------------------

    async def _after_zygote_lost(self) -> None:
        """Every sandbox of the lost zygote is dead: empty the pool and refill it from the next zygote."""
        factory = self._open_factory()
        for sandbox in self._pool.drain():
            self._spawn_background(factory.destroy(sandbox, keep_workspace=False))
        # A session whose interpreter was lost finds out at its next call and restarts then.
        self._pool_wakeup.set()

    def health(self) -> dict[str, Any]:
        """Whether a run can be served now, and if not, why: what ``/healthz`` reports."""
        reasons: list[str] = []
        factory = self._factory
        if factory is None or self._closed:
            return {"ok": False, "reasons": ["the engine is not running"]}
        zygote = factory.supervisor.snapshot()
        if zygote.state != "up":
            reasons.append(f"zygote {zygote.state.replace('_', ' ')}"
                           + (f" after {zygote.consecutive_failures} failures in a row" if zygote.consecutive_failures > 1
                              else "") + (f": {zygote.last_error}" if zygote.last_error else ""))
        if not self._pool.ready and self._pool.failing:
            reasons.append(f"the pool is empty and refills are failing ({self._pool.failing} in a row)"
                           + (f": {self._refill_error}" if self._refill_error else ""))
        if not self._pool.ready and len(factory.alive) >= self.config.max_sandboxes:
            reasons.append(f"no capacity to spawn: all {self.config.max_sandboxes} sandboxes are in use")
        disk = factory.free_disk()
        if disk is not None and (disk[0] < resources.MIN_FREE_DISK or disk[1] < resources.MIN_FREE_INODES):
            reasons.append(f"the state directory's disk is full ({disk[0]} bytes and {disk[1]} inodes free "
                           f"at {self.config.state_dir})")
        uids_free = factory.uids.free
        if uids_free == 0 and not self._pool.ready:
            reasons.append(f"no sandbox uid is free: all {self.config.uid_count} are in use (uid_count)")
        environments = {name: lane.health() for name, lane in self._lanes.items()}
        return {"ok": not reasons, "reasons": reasons, "environments": environments,
                "lean": self._lean.health() if self._lean is not None else None,
                "disk": None if disk is None else {"free_bytes": disk[0], "free_inodes": disk[1]}, "uids_free": uids_free,
                "zygote": {"state": zygote.state, "pid": zygote.pid, "restarts": zygote.restarts,
                           "consecutive_failures": zygote.consecutive_failures, "retry_in": zygote.retry_in,
                           "last_error": zygote.last_error}}

    # ---- the pool -----------------------------------------------------------

    async def _destroy_soon(self, factory: SandboxFactory, sandbox: Sandbox) -> None:
        deadline = time.monotonic() + TEARDOWN_MAX_DELAY
        while sandbox.alive and time.monotonic() < deadline:
            quiet_for = time.monotonic() - self._last_take
            if quiet_for >= REFILL_QUIET:
                break
            await asyncio.sleep(min(REFILL_QUIET - quiet_for, max(0.0, deadline - time.monotonic())))
        await factory.destroy(sandbox, keep_workspace=False)
        self._capacity_freed()

    async def _refill_loop(self) -> None:
        failures = 0
        while True:
            await self._pool_wakeup.wait()
            self._pool_wakeup.clear()
            if self._pool.failed_total > failures:
                # Starts failed since the last round (a failed start wakes this loop): back off, so a broken
                # host does not spin, then try again by itself. An idle server must not wait for a request to
                # find that the disk has room again: health says "unavailable" until the pool refills.
                failures = self._pool.failed_total
                await asyncio.sleep(min(5.0, 0.05 * 2 ** min(self._pool.failing, 7)))
            while len(self._pool.ready) + self._pool.starting >= self._pool.target / 2 and not self._handout.waiting:
                quiet_for = time.monotonic() - self._last_take
                if quiet_for >= REFILL_QUIET:
                    break
                await asyncio.sleep(REFILL_QUIET - quiet_for)
            needed = self._pool.starts_needed(self._waiting_for_default())
            for _ in range(needed):
                self._spawn_background(self._refill_one())

    async def _refill_one(self) -> None:
        sandbox = None
        abandoned = False
        try:
            factory = self._open_factory()
            if len(factory.alive) < self.config.max_sandboxes:
                sandbox = await factory.start(self.config.limits)
            else:
                abandoned = True  # all in use: not a failure; a teardown wakes the refills again
        except RestartingError as exc:
            # The zygote's own fault, reported by health as such; refills resume when it is back. The requests
            # waiting for a sandbox meanwhile get the 503 their own start would have got.
            abandoned = True
            message, retry_after = str(exc), exc.retry_after
            self._handout.fail_all(lambda: RestartingError(message, retry_after=retry_after))
        except (SpawnError, CapacityError, ResourceExhaustedError) as exc:
            log.warning("sandlot: could not refill the pool: %s", exc)
            self._refill_error = str(exc)
            self._refill_ran_out = isinstance(exc, CapacityError)
            if isinstance(exc, CapacityError | ResourceExhaustedError):
                # The host ran out (uids, disk, processes): the requests waiting for a pooled sandbox get that
                # answer now (429 or 503, with Retry-After), not a 500 once their wait runs out.
                kind, message, retry_after = type(exc), str(exc), exc.retry_after
                self._handout.fail_all(lambda: kind(message, retry_after=retry_after))
        except ClosedError:
            pass
        finally:
            if sandbox is not None:
                self._refill_error = None
            if abandoned:
                self._pool.start_abandoned()
            else:
                self._pool.start_finished(sandbox)
                self._pool_wakeup.set()  # a success may make room for more; a failure is retried after a backoff
            if sandbox is not None:
                self._hand_out()

    async def _session_reaper(self) -> None:
        """Idle sessions are paused (their interpreter ends, the rest stays); paused ones past
        ``paused_ttl``, and any past ``session_max_lifetime``, are deleted. A pool grown by a burst
        shrinks back here too (``PoolState.shrink_if_idle``)."""
        while True:
            await asyncio.sleep(1.0)
            now = time.time()
            for session in list(self.sessions.values()):
                if session.should_delete(now):
                    log.info("sandlot: session %s expired", session.id)
                    self.sessions.pop(session.id, None)
                    self._spawn_background(self._end_session(session))
                elif session.should_pause(now):
                    log.info("sandlot: session %s idle; pausing it", session.id)
                    self._spawn_background(self._pause_quietly(session))
                elif session.should_unmount(now):
                    self._spawn_background(session.unmount_if_idle())
            for surplus in self._pool.shrink_if_idle(time.monotonic()):
                self._spawn_background(self._open_factory().destroy(surplus, keep_workspace=False))
            for lane in self._every_lane():
                lane.shrink_if_idle(time.monotonic())

    async def _pause_quietly(self, session: Session) -> None:
        try:
            await session.pause()
        except ClosedError:
            pass
        except Exception:
            log.exception("sandlot: pausing session %s failed", session.id)

    def _spawn_background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _take(self) -> Sandbox | None:
        self._last_take = time.monotonic()
        sandbox = self._pool.take()
        if sandbox is not None and sandbox.cgroup is not None:
            sandbox.cgroup.taken()
        for dead in self._pool.take_dead():
            # Killed from outside while it waited in the pool: still alive to the factory (its uid, workspace,
            # cgroup and fds held, and counted against max_sandboxes) until it is destroyed.
            if self._factory is not None:
                self._spawn_background(self._factory.destroy(dead, keep_workspace=False))
        return sandbox

    def _every_lane(self) -> list[Lane]:
        """The named environments' lanes and the lean zygote's."""
        return [*self._lanes.values(), *([self._lean] if self._lean is not None else [])]

    def _lane(self, environment: str | None) -> Lane | None:
        """The lane of a named environment, None for the default one; unknown: ``InvalidRequestError``."""
        env = self.environments.get(environment)
        return None if env.default else self._lanes.get(env.name)

    @property
    def lanes(self) -> dict[str, Lane]:
        """The named environments' lanes, by name (``Lane.started`` says whether its zygote runs)."""
        return dict(self._lanes)

    def _open_factory(self) -> SandboxFactory:
        if self._closed:
            raise ClosedError("the engine is closed")
        if not self._started or self._factory is None:
            raise ClosedError("the engine is not started; use `async with Engine()` or `await engine.start()`")
        return self._factory
