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
import fcntl
import logging
import os
import re
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sandlot_runtime import _libc
from sandlot_runtime.spec import LANDLOCK, NAMESPACES, SandboxSpec, ZygoteSetup

from . import _cgroups, _host, _seccomp
from ._config import EngineConfig, Limits
from ._errors import CapacityError, ClosedError, InvalidRequestError, NotFoundError, SpawnError, TooLargeError
from ._models import ExecutionResult, ToolCallRecord, Usage
from ._pool import PoolState
from ._sandbox import EventCallback, RunOutcome, Sandbox
from ._session import Session
from ._workspace import Workspace, WorkspaceManager, remove_tree
from .tools import ToolBroker, ToolRegistry

log = logging.getLogger("sandlot")

READY_TIMEOUT = 30.0
LOCK_FILE = "lock"
INSTANCE_NAME = re.compile(r"^sandlot-\d+-[0-9a-f]{6}$")
"""An engine instance's name: its directory under the state dir and its parent cgroup."""
REFILL_QUIET = 0.01
"""While the pool has slack, refills wait for this long without a request, so a
burst of requests is not slowed by forks and containment competing for the CPU."""
TEARDOWN_MAX_DELAY = 0.25
"""A finished one-shot sandbox is killed in a gap between requests too (killing
unmaps ~80 MB of copy-on-write memory: milliseconds of kernel CPU), but never
later than this."""
MAX_CODE_BYTES = 1 << 20


class UidAllocator:
    """One uid per live sandbox, so rlimits and /proc visibility never mix two sandboxes."""

    def __init__(self, base: int, count: int) -> None:
        self._free = list(range(base + count - 1, base - 1, -1))
        self._used: set[int] = set()

    def take(self) -> int:
        if not self._free:
            raise CapacityError("no sandbox uid is free", retry_after=1.0)
        uid = self._free.pop()
        self._used.add(uid)
        return uid

    def release(self, uid: int) -> None:
        if uid in self._used:
            self._used.remove(uid)
            self._free.append(uid)


class Engine:
    """Runs untrusted Python in contained sandboxes. Use ``async with Engine() as engine``."""

    def __init__(self, config: EngineConfig | None = None, tools: ToolRegistry | None = None) -> None:
        self.config = config or EngineConfig()
        self.tools = tools or ToolRegistry()
        self.on_tool_call: list[Callable[[ToolCallRecord], None]] = []
        self.isolation: str | None = None
        self.support: _host.HostSupport | None = None
        self.sessions: dict[str, Session] = {}
        self.on_session_closed: list[Callable[[str], None]] = []
        self.stats: dict[str, int] = {"runs": 0, "sandboxes_started": 0, "sandboxes_destroyed": 0}
        self._pool: PoolState[Sandbox] = PoolState(self.config.pool_size)
        self._alive: set[Sandbox] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._pool_wakeup = asyncio.Event()
        self._closed = False
        self._started = False
        self._last_take = 0.0
        self._lock_fd: int | None = None
        self._instance = f"sandlot-{os.getpid()}-{secrets.token_hex(3)}"
        self._instance_dir = os.path.join(self.config.state_dir, self._instance)

    def __repr__(self) -> str:
        return (f"<Engine isolation={self.isolation} alive={len(self._alive)} sessions={len(self.sessions)} "
                f"pool={self._pool!r}>")

    @property
    def pool(self) -> PoolState[Sandbox]:
        return self._pool

    @property
    def sandboxes_alive(self) -> int:
        return len(self._alive)

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
        self.support = await asyncio.to_thread(_host.probe)
        self.isolation = _host.choose_isolation(self.config.isolation, self.support)
        if self.isolation == LANDLOCK:
            log.warning("sandlot: DEGRADED ISOLATION. No namespaces or cgroups here: sandboxes use Landlock, "
                        "seccomp and rlimits only, and share the host's pid and network view. "
                        "Run `sandlot doctor` for details; `--isolation strict` refuses to run like this.")
        cleanup_stale_instances(self.config.state_dir)
        os.makedirs(self._instance_dir, mode=0o711)
        # Held for the engine's life: a free lock tells a later engine this instance is dead,
        # whatever pid namespace either runs in.
        self._lock_fd = os.open(os.path.join(self._instance_dir, LOCK_FILE), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        root = os.geteuid() == 0
        hierarchies = _cgroups.detect() if root else {}
        self._cgroups = _cgroups.CgroupManager(hierarchies, self._instance) if hierarchies else None
        self._workspaces = WorkspaceManager(os.path.join(self._instance_dir, "ws"), use_tmpfs=root)
        self._uids = UidAllocator(self.config.uid_base, self.config.uid_count)
        root_mountpoint = os.path.join(self._instance_dir, "root")
        os.mkdir(root_mountpoint, 0o755)
        ro_dirs, ro_files = sandbox_view()
        bpf = _seccomp.build_program(allow_process_groups=self.isolation == NAMESPACES)
        setup = ZygoteSetup(isolation=self.isolation, seccomp_bpf=bpf, preload=list(self.config.preload),
                            root_mountpoint=root_mountpoint, ro_dirs=ro_dirs, ro_files=ro_files,
                            hostname=self.config.hostname)
        from ._zygote import Zygote

        self._zygote = Zygote(setup, zygote_environment(self.config.cache_dir))
        try:
            await self._zygote.start()
        except BaseException:
            await self._cleanup_instance()
            raise
        log.info("sandlot: zygote ready (isolation=%s, preloaded %s in %.0f ms)", self.isolation,
                 ",".join(self.config.preload) or "nothing", self._zygote.info.get("preload_ms", 0.0))
        self._spawn_background(self._refill_loop())
        self._pool_wakeup.set()
        self._spawn_background(self._session_reaper())

    async def close(self) -> None:
        """Stop everything: every sandbox, the zygote, and all our mounts, cgroups and directories."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(BaseException):
                await task
        if not self._started or not hasattr(self, "_zygote"):
            return
        for sandbox in list(self._alive):
            sandbox.kill("shutdown")
        await asyncio.gather(*(self._destroy(s, keep_workspace=False) for s in list(self._alive)),
                             return_exceptions=True)
        for session in list(self.sessions.values()):
            self._workspaces.remove(session.workspace)
            self._uids.release(session.uid)
        self.sessions.clear()
        await self._zygote.stop()
        await self._cleanup_instance()

    async def _cleanup_instance(self) -> None:
        cgroups: _cgroups.CgroupManager | None = getattr(self, "_cgroups", None)
        if cgroups is not None:
            for _ in range(100):
                cgroups.remove_all()
                if not any(os.path.isdir(os.path.join(h.own_dir, self._instance)) for h in cgroups.hierarchies.values()):
                    break
                await asyncio.sleep(0.02)
        workspaces: WorkspaceManager | None = getattr(self, "_workspaces", None)
        if workspaces is not None:
            workspaces.remove_all()
        shutil.rmtree(self._instance_dir, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ---- stateless runs -------------------------------------------------

    async def execute(self, code: str, *, timeout: float | None = None, files: Mapping[str, bytes] | None = None,
                      env: Mapping[str, str] | None = None, on_event: EventCallback | None = None,
                      tools: Iterable[str] | None = None, limits: Mapping[str, float | int] | None = None,
                      ) -> ExecutionResult:
        """Run ``code`` in a fresh single-use sandbox, destroyed afterwards.

        ``tools`` limits which registered host tools the code may call (default: all).
        ``limits`` overrides ``Limits`` fields for this run, up to the server's ``max_limits``.
        """
        self._check_open()
        check_code(code)
        run_limits = self.run_limits(timeout, limits)
        broker = self.tool_broker(tools)
        sandbox = await self._sandbox_for(run_limits)
        try:
            for path, data in (files or {}).items():
                sandbox.workspace.write(path, data)
            outcome = await sandbox.run(code, count=1, limits=run_limits, env=dict(env or {}), on_event=on_event,
                                        tools=broker)
        finally:
            # Never on the request path: teardown and refill happen after the run, in the
            # background, so the fork and containment of the next sandbox do not compete with it.
            self._spawn_background(self._destroy_soon(sandbox))
            self._pool_wakeup.set()
        return self.result(outcome, execution_count=1)

    def run_limits(self, timeout: float | None, changes: Mapping[str, float | int] | None) -> Limits:
        """The engine's default limits with a request's changes, refused beyond ``max_limits``."""
        changes = dict(changes or {})
        unknown = set(changes) - set(Limits.model_fields)
        if unknown:
            raise InvalidRequestError(f"unknown limits: {', '.join(sorted(unknown))}")
        if "tmp_size" in changes:
            raise InvalidRequestError("tmp_size is the server's setting; it cannot change per run")
        return self.config.limits.override(self.config.max_limits, timeout=timeout, **changes)

    async def _sandbox_for(self, limits: Limits) -> Sandbox:
        """A sandbox held to ``limits``: from the pool (retargeted), or started on demand."""
        sandbox = self._take()
        if sandbox is not None and not sandbox.can_retarget(limits):
            self._pool.give_back(sandbox)  # unused: the next request may take it
            sandbox = None
        if sandbox is None:
            self._pool_wakeup.set()
            return await self._start_sandbox(limits)
        try:
            if limits.workspace_size != sandbox.limits.workspace_size:
                await asyncio.to_thread(self._workspaces.resize, sandbox.workspace, limits.workspace_size)
            sandbox.retarget(limits)
        except OSError as exc:
            self._spawn_background(self._destroy(sandbox, keep_workspace=False))
            raise InvalidRequestError(f"these limits cannot be applied: {exc.strerror}") from None
        return sandbox

    def result(self, outcome: RunOutcome, *, execution_count: int, restarted: bool = False) -> ExecutionResult:
        self.stats["runs"] += 1
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
                             limits: Mapping[str, float | int] | None = None) -> Session:
        """A persistent interpreter whose variables and files carry over between cells.

        ``tools`` limits which registered host tools its code may call (default: all);
        ``limits`` overrides ``Limits`` fields for the session, up to ``max_limits``.
        """
        self._check_open()
        tool_names = None if tools is None else list(tools)
        self.tools.subset(tool_names)  # refuse unknown names now, not at the first call
        session_limits = self.run_limits(timeout, limits)
        idle = min(idle_timeout or self.config.session_idle_timeout, self.config.session_max_lifetime)
        sandbox = await self._sandbox_for(session_limits)
        self._pool_wakeup.set()
        session = Session(self, sandbox, limits=session_limits, idle_timeout=idle, env=dict(env or {}),
                          tools=tool_names)
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
        await session._close()

    async def _restart_sandbox(self, session: Session) -> Sandbox:
        """A fresh interpreter for ``session``: same uid, same workspace (files intact)."""
        return await self._start_sandbox(session.limits, uid=session.uid, workspace=session.workspace)

    async def _retire_sandbox(self, sandbox: Sandbox) -> None:
        """Destroy a session's dead or closed sandbox but keep its workspace and uid."""
        await self._destroy(sandbox, keep_workspace=True, keep_uid=True)

    def _release_session_resources(self, session: Session) -> None:
        self._workspaces.remove(session.workspace)
        self._uids.release(session.uid)

    # ---- sandboxes --------------------------------------------------------

    async def _start_sandbox(self, limits: Limits, *, uid: int | None = None,
                             workspace: Workspace | None = None) -> Sandbox:
        self._check_open()
        if len(self._alive) >= self.config.max_sandboxes:
            raise CapacityError(f"all {self.config.max_sandboxes} sandboxes are in use", retry_after=1.0)
        own_uid = uid is None
        own_workspace = workspace is None
        uid = self._uids.take() if uid is None else uid
        cgroup = None
        channel = ours = None
        fds: list[int] = []
        try:
            # Mounts and cgroup directories are blocking system calls (a cgroup v1 rmdir or
            # mkdir can take milliseconds): they run in a worker thread, so requests being
            # served on the event loop meanwhile do not wait behind a refill.
            if workspace is None:
                # Named per sandbox, not per uid: a uid can be free again before its last
                # sandbox's workspace is gone (teardown removes it in the background).
                workspace = await asyncio.to_thread(self._workspaces.create, f"u{uid}-{secrets.token_hex(3)}",
                                                    owner_uid=uid, size_bytes=limits.workspace_size)
            tmp_dir = ""
            if self.isolation == LANDLOCK:
                tmp_dir = workspace.path + ".tmp"
                os.makedirs(tmp_dir, 0o700, exist_ok=True)
                if os.geteuid() == 0:
                    os.chown(tmp_dir, uid, uid)
            if self._cgroups is not None:
                cgroup = await asyncio.to_thread(self._cgroups.create, f"sb-{uid}-{secrets.token_hex(2)}",
                                                 memory_bytes=limits.memory, pids=limits.pids)
            # With a pids cgroup, RLIMIT_NPROC is only a backstop (at the maximum, so a run's pids limit can be
            # raised from outside); without one it is the limit.
            nproc = self.config.max_limits.pids if cgroup is not None else limits.pids
            spec = SandboxSpec(uid=uid, workspace=workspace.path, tmp_dir=tmp_dir, tmp_size=limits.tmp_size,
                               cgroup_procs=cgroup.procs_files if cgroup else [], rlimits=rlimits_for(limits, nproc))
            ours, channel = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            fds = [out_r, err_r]
            try:
                pid, pidfd = await self._zygote.spawn(spec, channel.fileno(), out_w, err_w)
            finally:
                channel.close()
                os.close(out_w)
                os.close(err_w)
            sandbox = Sandbox(pid=pid, pidfd=pidfd, uid=uid, channel=ours, stdout_fd=out_r, stderr_fd=err_r,
                              cgroup=cgroup, workspace=workspace, zygote=self._zygote,
                              process_group=self.isolation == LANDLOCK, max_frame=limits.rich_output_size + (1 << 20),
                              limits=limits)
        except BaseException:
            if ours is not None:
                ours.close()
            for fd in fds:
                os.close(fd)
            if cgroup is not None:
                cgroup.remove()
            if own_workspace and workspace is not None:
                self._workspaces.remove(workspace)
            if own_uid:
                self._uids.release(uid)
            raise
        self._alive.add(sandbox)
        self.stats["sandboxes_started"] += 1
        try:
            await sandbox.wait_ready(READY_TIMEOUT)
        except BaseException:
            await self._destroy(sandbox, keep_workspace=not own_workspace, keep_uid=not own_uid)
            raise
        return sandbox

    async def _destroy(self, sandbox: Sandbox, *, keep_workspace: bool, keep_uid: bool = False) -> None:
        """Kill a sandbox and release what it held. Safe to call twice."""
        if sandbox not in self._alive:
            return
        self._alive.discard(sandbox)
        sandbox.kill("destroyed")
        exited = None
        try:
            exited = await sandbox.wait_exit(10.0)
        finally:
            # Even when cancelled (at engine shutdown), never leave our ends open; the
            # engine's own shutdown removes whatever cgroups and workspaces remain.
            sandbox.close_io()
            # A uid is free again only once nothing of the sandbox can still run under it.
            if not keep_uid and (exited is not None or self._closed):
                self._uids.release(sandbox.uid)
            elif exited is None:
                log.warning("sandlot: sandbox %d did not exit; its uid %d stays reserved", sandbox.pid, sandbox.uid)
        if sandbox.cgroup is not None:
            for _ in range(250):
                if await asyncio.to_thread(sandbox.cgroup.remove):
                    break
                await asyncio.sleep(0.02)
        if not keep_workspace:
            await asyncio.to_thread(self._workspaces.remove, sandbox.workspace)
            if self.isolation == LANDLOCK:
                remove_tree(sandbox.workspace.path + ".tmp", is_mount=False)
        self.stats["sandboxes_destroyed"] += 1

    async def _destroy_soon(self, sandbox: Sandbox) -> None:
        deadline = time.monotonic() + TEARDOWN_MAX_DELAY
        while sandbox.alive and time.monotonic() < deadline:
            quiet_for = time.monotonic() - self._last_take
            if quiet_for >= REFILL_QUIET:
                break
            await asyncio.sleep(min(REFILL_QUIET - quiet_for, max(0.0, deadline - time.monotonic())))
        await self._destroy(sandbox, keep_workspace=False)

    async def _refill_loop(self) -> None:
        failures = 0
        while True:
            await self._pool_wakeup.wait()
            self._pool_wakeup.clear()
            while len(self._pool.ready) + self._pool.starting >= self._pool.target / 2:
                quiet_for = time.monotonic() - self._last_take
                if quiet_for >= REFILL_QUIET:
                    break
                await asyncio.sleep(REFILL_QUIET - quiet_for)
            needed = self._pool.starts_needed()
            for _ in range(needed):
                self._spawn_background(self._refill_one())
            if needed == 0 and self._pool.failed_total > failures:
                failures = self._pool.failed_total
                # Back off after failures, so a broken host does not spin.
                await asyncio.sleep(min(5.0, 0.05 * 2 ** min(failures, 7)))
                self._pool_wakeup.set()

    async def _refill_one(self) -> None:
        sandbox = None
        try:
            if len(self._alive) < self.config.max_sandboxes:
                sandbox = await self._start_sandbox(self.config.limits)
        except (SpawnError, CapacityError) as exc:
            log.warning("sandlot: could not refill the pool: %s", exc)
        except ClosedError:
            pass
        finally:
            self._pool.start_finished(sandbox)
            if sandbox is not None:
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
        return self._pool.take()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the engine is closed")
        if not self._started:
            raise ClosedError("the engine is not started; use `async with Engine()` or `await engine.start()`")


def check_code(code: str) -> None:
    if not isinstance(code, str):
        raise TypeError("code must be a string")
    try:
        size = len(code.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequestError("code must be valid Unicode text (it holds a lone surrogate)") from None
    if size > MAX_CODE_BYTES:
        raise TooLargeError(f"code is over the limit of {MAX_CODE_BYTES} bytes")


def rlimits_for(limits: Limits, nproc: int) -> dict[str, list[int]]:
    cpu = max(1, int(limits.cpu_seconds + 0.999))
    return {
        # Soft: this run's CPU budget (the runtime moves it per cell). Hard: unlimited, the
        # host's wall-clock timeout is the backstop that always holds.
        "cpu": [cpu, -1],
        "fsize": [limits.file_size, limits.file_size],
        "nofile": [limits.open_files, limits.open_files],
        "nproc": [nproc, nproc],
        "core": [0, 0],
        "as": [limits.address_space, limits.address_space],
    }


def sandbox_view() -> tuple[list[str], list[str]]:
    """Host paths a sandbox sees read-only: /usr, the Python installation, the dynamic linker's cache."""
    candidates = {"/usr", sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    candidates.update(p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p)
    dirs: list[str] = []
    for path in sorted(os.path.realpath(p) for p in candidates if os.path.isdir(p)):
        if not any(path == d or path.startswith(d + "/") for d in dirs):
            dirs.append(path)
    files = [f for f in ("/etc/ld.so.cache", "/etc/mime.types") if os.path.isfile(f)]
    return dirs, files


def zygote_environment(cache_dir: str) -> dict[str, str]:
    """The zygote's whole environment: nothing of the server's, nothing secret."""
    mpl = os.path.join(cache_dir, "matplotlib")
    os.makedirs(mpl, exist_ok=True)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": mpl,
    }


def instance_is_live(instance_dir: str) -> bool:
    """Whether an engine still owns this instance directory (it holds the directory's lock)."""
    try:
        fd = os.open(os.path.join(instance_dir, LOCK_FILE), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        # No lock yet: an engine may be creating it this very moment; give it a minute.
        try:
            return time.time() - os.stat(instance_dir).st_mtime < 60
        except FileNotFoundError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we may have just taken
    return False


def cleanup_stale_instances(state_dir: str) -> None:
    """Remove what dead sandlot engines left behind: mounts, directories, cgroups."""
    os.makedirs(state_dir, mode=0o711, exist_ok=True)
    for name in os.listdir(state_dir):
        path = os.path.join(state_dir, name)
        if not INSTANCE_NAME.match(name) or instance_is_live(path):
            continue
        for mount_point in sorted(_mounts_under(path), reverse=True):
            with contextlib.suppress(OSError):
                _libc.umount2(mount_point, _libc.MNT_DETACH)
        shutil.rmtree(path, ignore_errors=True)
    if os.geteuid() == 0:
        for hierarchy in _cgroups.detect().values():
            with contextlib.suppress(OSError):
                for name in os.listdir(hierarchy.own_dir):
                    if INSTANCE_NAME.match(name) and not instance_is_live(os.path.join(state_dir, name)):
                        _cgroups.CgroupManager.remove_tree(os.path.join(hierarchy.own_dir, name))


def _mounts_under(path: str) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mount_point = line.split()[4]
            if mount_point == path or mount_point.startswith(path + "/"):
                found.append(mount_point)
    return found
