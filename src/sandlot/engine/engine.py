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
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sandlot_runtime.spec import LANDLOCK

from .._config import EngineConfig, Limits
from .._errors import CapacityError, ClosedError, InvalidRequestError, NotFoundError, RestartingError, SpawnError
from .._models import ExecutionResult, ToolCallRecord, Usage
from ..tools import ToolBroker, ToolRegistry
from . import host
from .code import check_code
from .collector import EventCallback, RunOutcome
from .factory import SandboxFactory
from .handout import MAX_WAIT, Handout
from .instances import Instance
from .pool import PoolState
from .sandbox import Sandbox, can_retarget
from .session import Session
from .workspace import Workspace

log = logging.getLogger("sandlot")

REFILL_QUIET = 0.01
"""While the pool has slack, refills wait for this long without a request, so a
burst of requests is not slowed by forks and containment competing for the CPU."""
SPAWN_ATTEMPTS = 5
MIN_FREE_DISK = 16 << 20
"""Below this much free space on the disk that holds the workspaces, health says a run cannot be served."""
PLACE_AFTER = 0.05
"""A one-shot run still running after this long moves to its tenant's cpu group. Most runs are over by then,
and never pay for the move: a cgroup v1 move waits for an RCU grace period after an idle spell, and while it
waits every fork and exit on the host waits too (measured once here, on a loaded host: idle p50 5.3 ms
without the move, 8.5 ms with it at the start of every run)."""
TEARDOWN_MAX_DELAY = 0.25
"""A finished one-shot sandbox is killed in a gap between requests too (killing
unmaps ~80 MB of copy-on-write memory: milliseconds of kernel CPU), but never
later than this."""


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
        self._pool: PoolState[Sandbox] = PoolState(self.config.pool_size)
        self._handout: Handout[Sandbox] = Handout(self.config.max_sandboxes)
        self._refill_error = ""
        self._factory: SandboxFactory | None = None
        self._instance = Instance(self.config.state_dir)
        self._background: set[asyncio.Task[Any]] = set()
        self._pool_wakeup = asyncio.Event()
        self._closed = False
        self._started = False
        self._last_take = 0.0

    def __repr__(self) -> str:
        return (f"<Engine isolation={self.isolation} alive={self.sandboxes_alive} sessions={len(self.sessions)} "
                f"pool={self._pool!r} handout={self._handout!r}>")

    @property
    def pool(self) -> PoolState[Sandbox]:
        return self._pool

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
        self._instance.create()
        try:
            self._factory = SandboxFactory(self.config, self.isolation, self._instance)
            await self._factory.start_zygote()
        except BaseException:
            if self._factory is not None:
                await self._factory.remove_leftovers()
            self._instance.remove()
            raise
        log.info("sandlot: zygote ready (isolation=%s, preloaded %s in %.0f ms)", self.isolation,
                 ",".join(self.config.preload) or "nothing", self._factory.zygote.info.get("preload_ms", 0.0))
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
        self.sessions.clear()
        await factory.close()
        self._instance.remove()

    # ---- stateless runs -------------------------------------------------

    async def execute(self, code: str, *, timeout: float | None = None, files: Mapping[str, bytes] | None = None,
                      env: Mapping[str, str] | None = None, on_event: EventCallback | None = None,
                      tools: Iterable[str] | None = None, limits: Mapping[str, float | int] | None = None,
                      tenant: str | None = None) -> ExecutionResult:
        """Run ``code`` in a fresh single-use sandbox, destroyed afterwards.

        ``tools`` limits which registered host tools the code may call (default: all).
        ``limits`` overrides ``Limits`` fields for this run, up to the server's ``max_limits``.
        ``tenant`` (the server passes the API key's principal) is whose run it is: scarce sandboxes are
        handed out fairly between tenants, and each tenant's sandboxes share one cpu group.
        """
        factory = self._open_factory()
        check_code(code)
        run_limits = self.run_limits(timeout, limits)
        broker = self.tool_broker(tools)
        for attempt in range(1, SPAWN_ATTEMPTS + 1):
            sandbox = await self._sandbox_for(run_limits, tenant)
            if tenant is not None:
                self._spawn_background(self._place_later(factory, sandbox, tenant))
            try:
                for path, data in (files or {}).items():
                    sandbox.workspace.write(path, data)
                outcome = await sandbox.run(code, count=1, limits=run_limits, env=dict(env or {}),
                                            on_event=on_event, tools=broker)
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
        return self.result(outcome, execution_count=1)

    def raise_if_lost(self, sandbox: Sandbox) -> None:
        """A run whose sandbox went down with its zygote failed for the server's reasons: 503, retry."""
        if sandbox.lost is not None:
            retry = self._factory.supervisor.retry_after() if self._factory is not None else 1.0
            raise RestartingError(f"the run was lost: {sandbox.lost}; retry", retry_after=retry)

    def run_limits(self, timeout: float | None, changes: Mapping[str, float | int] | None) -> Limits:
        """The engine's default limits with a request's changes, refused beyond ``max_limits``."""
        changes = dict(changes or {})
        unknown = set(changes) - set(Limits.model_fields)
        if unknown:
            raise InvalidRequestError(f"unknown limits: {', '.join(sorted(unknown))}")
        if "tmp_size" in changes:
            raise InvalidRequestError("tmp_size is the server's setting; it cannot change per run")
        return self.config.limits.override(self.config.max_limits, timeout=timeout, **changes)

    async def _sandbox_for(self, limits: Limits, tenant: str | None) -> Sandbox:
        """A sandbox held to ``limits`` and counted as ``tenant``'s (the caller releases it): from the pool
        (retargeted), fairly when the pool runs short, or started on demand for limits no pooled one can take."""
        factory = self._open_factory()
        who = tenant or ""
        if can_retarget(self.config.limits, limits, has_cgroup=factory.cgroups is not None):
            sandbox = None
            if self._handout.may_take(who, len(self._pool.ready), self._pool.starting):
                sandbox = self._take()
            if sandbox is None:
                sandbox = await self._wait_for_pooled(who)
        else:
            self._pool_wakeup.set()
            sandbox = await self._start_on_demand(factory, limits, tenant)
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

    async def _place_later(self, factory: SandboxFactory, sandbox: Sandbox, tenant: str) -> None:
        await asyncio.sleep(PLACE_AFTER)
        factory.place(sandbox, tenant)  # nothing to do if its teardown has begun

    async def _wait_for_pooled(self, who: str) -> Sandbox:
        """Wait in ``who``'s queue for the next pooled sandbox the hand-out gives it (see ``handout``)."""
        future = self._handout.enqueue(who)
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
        self._pool.give_back(sandbox)
        self._hand_out()

    def _hand_out(self) -> None:
        """Ready sandboxes go to the requests waiting for one, fairly (see ``handout``)."""
        while self._handout.waiting and self._pool.ready:
            sandbox = self._take()
            if sandbox is None:
                return
            waiter = self._handout.next_waiter(len(self._pool.ready) + 1, self._pool.starting)
            if waiter is None:
                self._pool.give_back(sandbox)  # the reserve, kept for another tenant
                return
            waiter.set_result(sandbox)

    async def _start_on_demand(self, factory: SandboxFactory, limits: Limits, tenant: str | None) -> Sandbox:
        """A fresh sandbox for a request; one that dies before it is ready (killed from outside, a
        transient fault) is replaced, a few times, rather than failing the request."""
        for attempt in range(1, SPAWN_ATTEMPTS + 1):
            try:
                return await factory.start(limits, tenant=tenant)
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
                             limits: Mapping[str, float | int] | None = None, tenant: str | None = None) -> Session:
        """A persistent interpreter whose variables and files carry over between cells.

        ``tools`` limits which registered host tools its code may call (default: all);
        ``limits`` overrides ``Limits`` fields for the session, up to ``max_limits``;
        ``tenant`` is whose session it is (as for ``execute``).
        """
        self._open_factory()
        tool_names = None if tools is None else list(tools)
        self.tools.subset(tool_names)  # refuse unknown names now, not at the first call
        session_limits = self.run_limits(timeout, limits)
        idle = min(idle_timeout or self.config.session_idle_timeout, self.config.session_max_lifetime)
        sandbox = await self._sandbox_for(session_limits, tenant)
        if tenant is not None:
            self._open_factory().place(sandbox, tenant)  # a session is there for a while: move it now
        self._pool_wakeup.set()
        session = Session(self, sandbox, limits=session_limits, idle_timeout=idle, env=dict(env or {}),
                          tools=tool_names, tenant=tenant)
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

    async def _end_session(self, session: Session) -> None:
        for callback in self.on_session_closed:
            callback(session.id)
        try:
            await session.close()
        finally:
            self._handout.release(session.tenant or "")

    # What a session asks of the engine: the doors between the two rooms.

    async def start_session_sandbox(self, limits: Limits, uid: int, workspace: Workspace,
                                    tenant: str | None = None) -> Sandbox:
        """A fresh interpreter for a session: its uid, its workspace (files intact), its tenant's cpu group."""
        return await self._open_factory().start(limits, uid=uid, workspace=workspace, tenant=tenant)

    async def retire_session_sandbox(self, sandbox: Sandbox) -> None:
        """Destroy a session's dead or closed sandbox but keep its workspace and uid."""
        if self._factory is not None:
            await self._factory.destroy(sandbox, keep_workspace=True, keep_uid=True)
            self._capacity_freed()

    def _capacity_freed(self) -> None:
        if self._handout.waiting:
            self._pool_wakeup.set()  # a refill can start for a waiting request now

    def release_session_resources(self, uid: int, workspace: Workspace) -> None:
        """A closed session's workspace and uid go back."""
        if self._factory is not None and not self._factory.closed:
            self._factory.remove_workspace(workspace)
            self._factory.uids.release(uid)

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
            reasons.append(f"the pool is empty and refills are failing ({self._pool.failing} in a row)")
        if not self._pool.ready and len(factory.alive) >= self.config.max_sandboxes:
            reasons.append(f"no capacity to spawn: all {self.config.max_sandboxes} sandboxes are in use")
        free = factory.free_disk()
        if free is not None and free < MIN_FREE_DISK:
            reasons.append(f"the workspaces' disk is full ({free} bytes free)")
        return {"ok": not reasons, "reasons": reasons,
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
            while len(self._pool.ready) + self._pool.starting >= self._pool.target / 2 and not self._handout.waiting:
                quiet_for = time.monotonic() - self._last_take
                if quiet_for >= REFILL_QUIET:
                    break
                await asyncio.sleep(REFILL_QUIET - quiet_for)
            needed = self._pool.starts_needed(self._handout.waiting)
            for _ in range(needed):
                self._spawn_background(self._refill_one())
            if needed == 0 and self._pool.failed_total > failures:
                failures = self._pool.failed_total
                # Back off after failures, so a broken host does not spin.
                await asyncio.sleep(min(5.0, 0.05 * 2 ** min(failures, 7)))
                self._pool_wakeup.set()

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
        except (SpawnError, CapacityError) as exc:
            log.warning("sandlot: could not refill the pool: %s", exc)
            self._refill_error = str(exc)
        except ClosedError:
            pass
        finally:
            if abandoned:
                self._pool.start_abandoned()
            else:
                self._pool.start_finished(sandbox)
            if sandbox is not None:
                self._hand_out()
                self._pool_wakeup.set()

    async def _session_reaper(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if session.expired(now):
                    log.info("sandlot: session %s expired", session.id)
                    self.sessions.pop(session.id, None)
                    self._spawn_background(self._end_session(session))

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

    def _open_factory(self) -> SandboxFactory:
        if self._closed:
            raise ClosedError("the engine is closed")
        if not self._started or self._factory is None:
            raise ClosedError("the engine is not started; use `async with Engine()` or `await engine.start()`")
        return self._factory
