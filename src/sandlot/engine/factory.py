"""Making and destroying sandboxes: what each one holds, got and given back in order.

A sandbox holds a uid, a workspace, a cgroup, a channel and two output pipes,
and is forked by the zygote. ``SandboxFactory.start`` acquires them in that
order and releases every one of them if a later step fails; ``destroy`` kills
the sandbox and releases them again, the uid last, once nothing can run under it.
Blocking work (mounts, cgroup directories) runs in a worker thread, so requests
served on the event loop meanwhile do not wait behind a refill.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sandlot_runtime.spec import LANDLOCK, NAMESPACES, SandboxSpec, ZygoteSetup

from .._config import EngineConfig, Limits
from .._errors import CapacityError, ClosedError, RestartingError
from . import cgroups, resources, seccomp
from .instances import Instance
from .sandbox import Sandbox
from .supervisor import ZygoteSupervisor
from .uids import SharedUid, UidAllocator
from .workspace import Workspace, WorkspaceManager, remove_tree
from .zygote import Zygote, zygote_environment

log = logging.getLogger("sandlot")
T = TypeVar("T")

ZYGOTE_NICE = 10
"""Without the cpu controller, the zygote forks and contains at low priority, so refilling the pool yields the
CPU to requests (and competes with busy sandboxes on equal terms: the soak saw it starved)."""
ZYGOTE_NICE_WEIGHTED = 0
"""With it, every sandbox is in a group that weighs a quarter of a nice-0 process (see ``cpu``): the zygote
beside the server at full weight is never starved by them, and refills still wait for gaps between requests
(``REFILL_QUIET``)."""
READY_TIMEOUT = 30.0
EXIT_WAIT = 10.0
"""Seconds a teardown waits for a killed sandbox's pid 1 to be reaped."""
CGROUP_REMOVE_TRIES = 250
"""Tries (20 ms apart) to remove a dead sandbox's cgroups before they are left to the sweeper."""
SWEEP_EVERY = 1.0
"""Seconds between tries to remove the cgroups of sandboxes that were still exiting when they were to go."""
RESTART_WAIT = 5.0
"""A request that finds the zygote restarting waits this long for the new one before it gets a 503."""


@dataclass(frozen=True)
class NetworkSpec:
    """What a sandbox with network starts with: the proxy's variables, and the directories it reads (wheels)."""

    env: Mapping[str, str]
    ro_dirs: tuple[str, ...] = ()


class SandboxFactory:
    """Starts contained sandboxes from one zygote and tears them down; owns every live one."""

    def __init__(self, config: EngineConfig, isolation: str, instance: Instance) -> None:
        self.config = config
        self.isolation = isolation
        self.instance = instance
        self.alive: set[Sandbox] = set()
        self.stats: dict[str, int] = {"sandboxes_started": 0, "sandboxes_destroyed": 0}
        self.closed = False
        self._abandoned: list[tuple[cgroups.SandboxCgroup, int | None, str | None]] = []
        """Cgroups that still had a process inside when they were to go (a failed start's, a teardown's that waited
        in vain), with the uid to free and the tenant whose cpu group to release once they are empty: removed by
        the next start, or by the sweeper (the soak saw one left for good when no start came after it)."""
        self._sweeper: asyncio.Task[None] | None = None
        root = os.geteuid() == 0
        hierarchies = cgroups.detect() if root else {}
        self.cgroups = cgroups.CgroupManager(hierarchies, instance.name) if hierarchies else None
        self.workspaces = WorkspaceManager(os.path.join(instance.path, "ws"), use_tmpfs=root)
        self.uids: UidAllocator | SharedUid = UidAllocator(config.uid_base, config.uid_count) if root else SharedUid(os.geteuid())
        root_mountpoint = os.path.join(instance.path, "root")
        os.mkdir(root_mountpoint, 0o755)
        ro_dirs, ro_files = sandbox_view()
        bpf = seccomp.build_program(allow_process_groups=isolation == NAMESPACES)
        # Only namespaces mode has a network namespace of its own to put the egress proxy in.
        bpf_network = seccomp.build_program(allow_process_groups=True, network=True) if isolation == NAMESPACES else b""
        weighted = self.cgroups is not None and "cpu" in self.cgroups.hierarchies
        self._setup = ZygoteSetup(isolation=isolation, seccomp_bpf=bpf, seccomp_bpf_network=bpf_network, preload=list(config.preload),
                                  root_mountpoint=root_mountpoint, ro_dirs=ro_dirs, ro_files=ro_files,
                                  hostname=config.hostname, nice=ZYGOTE_NICE_WEIGHTED if weighted else ZYGOTE_NICE,
                                  deny_modules=list(config.modules.deny),
                                  allow_modules=None if config.modules.allow is None else list(config.modules.allow))
        self._zygote_env = zygote_environment(config.cache_dir)
        self.supervisor = ZygoteSupervisor(lambda: Zygote(self._setup, self._zygote_env), self._zygote_lost)
        self.on_zygote_lost: list[Callable[[], Awaitable[None]]] = []
        """Called after every sandbox of a lost zygote was killed (the engine tidies its pool and sessions)."""
        self.lane_supervisors: list[ZygoteSupervisor] = []
        """The zygotes of the named environments (``lanes``), made at each one's first use."""

    def __repr__(self) -> str:
        return f"<SandboxFactory isolation={self.isolation} alive={len(self.alive)} {self.uids!r} {self.supervisor!r}>"

    @property
    def zygote(self) -> Zygote:
        return self.supervisor.zygote

    async def start_zygote(self) -> None:
        await self.supervisor.start()

    async def _zygote_lost(self, zygote: Zygote, reason: str) -> None:
        """No sandbox outlives its zygote: kill every one it forked (the second line behind their own
        parent-death signal), marked lost, so the runs in flight fail with RestartingError."""
        self.lose_sandboxes_of(zygote, reason)
        for callback in self.on_zygote_lost:
            await callback()

    def lose_sandboxes_of(self, zygote: Zygote, reason: str) -> None:
        for sandbox in list(self.alive):
            if sandbox.zygote is zygote:
                sandbox.lose(reason)

    def lane_supervisor(self, *, environment: str, python: str, preload: list[str], ro_dirs: list[str],
                        deny_modules: list[str], allow_modules: list[str] | None,
                        on_lost: Callable[[], Awaitable[None]]) -> ZygoteSupervisor:
        """A supervisor (not started) for a named environment's zygote: started with ``python``, preloading
        ``preload``, its sandboxes seeing ``ro_dirs`` too; ``on_lost`` after its lost sandboxes were killed."""
        seen, _files = sandbox_view()
        setup = dataclasses.replace(self._setup, preload=preload, environment=environment,
                                    ro_dirs=_outermost([*seen, *ro_dirs]), deny_modules=deny_modules,
                                    allow_modules=allow_modules)
        return self._lane_supervisor(setup, python, on_lost)

    def lean_supervisor(self, on_lost: Callable[[], Awaitable[None]]) -> ZygoteSupervisor:
        """A supervisor (not started) for the lean zygote: the default environment's in every respect (its
        Python, view, module policy, containment) but that it preloads nothing (``imports``)."""
        return self._lane_supervisor(dataclasses.replace(self._setup, preload=[]), sys.executable, on_lost)

    def _lane_supervisor(self, setup: ZygoteSetup, python: str,
                         on_lost: Callable[[], Awaitable[None]]) -> ZygoteSupervisor:
        async def lost(zygote: Zygote, reason: str) -> None:
            self.lose_sandboxes_of(zygote, reason)
            await on_lost()

        supervisor = ZygoteSupervisor(lambda: Zygote(setup, self._zygote_env, python=python), lost)
        self.lane_supervisors.append(supervisor)
        return supervisor

    async def start(self, limits: Limits, *, uid: int | None = None, workspace: Workspace | None = None,
                    tenant: str | None = None, supervisor: ZygoteSupervisor | None = None,
                    network: NetworkSpec | None = None) -> Sandbox:
        """A ready sandbox held to ``limits``; with ``uid`` and ``workspace``, a session's next interpreter;
        with ``tenant``, in that tenant's cpu group from the start (else in the pool's, until it is placed);
        with ``supervisor``, forked by that zygote (a named environment's) instead of the default one;
        with ``network``, a sandbox that may make TCP sockets (for the egress proxy), with its environment.

        The host running out of something on the way (disk, processes, memory, fds) is
        ``ResourceExhaustedError``; another OS error is a ``SpawnError``."""
        try:
            return await self._start(limits, uid=uid, workspace=workspace, tenant=tenant,
                                     supervisor=supervisor or self.supervisor, network=network)
        except (OSError, RuntimeError) as exc:
            translated = resources.translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    async def _start(self, limits: Limits, *, uid: int | None, workspace: Workspace | None,
                     tenant: str | None, supervisor: ZygoteSupervisor, network: NetworkSpec | None) -> Sandbox:
        if self.closed:
            raise ClosedError("the engine is closed")
        if len(self.alive) >= self.config.max_sandboxes:
            raise CapacityError(f"all {self.config.max_sandboxes} sandboxes are in use", retry_after=1.0)
        own_uid = uid is None
        own_workspace = workspace is None
        if self._abandoned:
            await self._remove_abandoned()
        uid = self.uids.take() if uid is None else uid
        cgroup = None
        channel = ours = None
        fds: list[int] = []
        tenants = self.cgroups.tenants if self.cgroups is not None else None
        cpu_parent = tenants.acquire(tenant) if tenants is not None and tenant is not None else None
        try:
            if workspace is None:
                # Named per sandbox, not per uid: a uid can be free again before its last
                # sandbox's workspace is gone (teardown removes it in the background).
                workspace = await _in_thread(self.workspaces.remove, self.workspaces.create, f"u{uid}-{secrets.token_hex(3)}",
                                             owner_uid=uid, size_bytes=limits.workspace_size)
            tmp_dir = ""
            if self.isolation == LANDLOCK:
                tmp_dir = workspace.path + ".tmp"
                os.makedirs(tmp_dir, 0o700, exist_ok=True)
                if os.geteuid() == 0:
                    os.chown(tmp_dir, uid, uid)
            if self.cgroups is not None:
                cgroup = await _in_thread(lambda made: made.remove(), self.cgroups.create, f"sb-{uid}-{secrets.token_hex(2)}",
                                          memory_bytes=limits.memory, pids=limits.pids, cpus=limits.cpus,
                                          cpu_parent=cpu_parent)
            spec = SandboxSpec(uid=uid, workspace=workspace.path, tmp_dir=tmp_dir, tmp_size=limits.tmp_size,
                               cgroup_procs=cgroup.procs_files if cgroup else [],
                               rlimits=self.rlimits_for(limits, has_cgroup=cgroup is not None,
                                                        zygote=supervisor.zygote),
                               network=network is not None, env=dict(network.env) if network else {},
                               ro_dirs=list(network.ro_dirs) if network else [])
            ours, channel = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            fds = [out_r, err_r]
            try:
                # Inside the try: a zygote still restarting (or unresponsive) after RESTART_WAIT, or a
                # cancelled wait, must not leave the sandbox's ends of its channel and pipes open.
                zygote = await supervisor.wait_up(RESTART_WAIT)
                pid, pidfd = await zygote.spawn(spec, channel.fileno(), out_w, err_w)
            finally:
                channel.close()
                os.close(out_w)
                os.close(err_w)
            sandbox = Sandbox(pid=pid, pidfd=pidfd, uid=uid, channel=ours, stdout_fd=out_r, stderr_fd=err_r,
                              cgroup=cgroup, workspace=workspace, zygote=zygote,
                              process_group=self.isolation == LANDLOCK, max_frame=limits.rich_output_size + (1 << 20),
                              limits=limits)
        except BaseException:
            if ours is not None:
                ours.close()
            for fd in fds:
                os.close(fd)
            if own_workspace and workspace is not None:
                self.workspaces.remove(workspace)
            if cgroup is not None and not cgroup.remove():
                # The zygote may have forked the sandbox before we stopped waiting for it (the wait was
                # cancelled, or the zygote died): it is inside its cgroup until it sees its channel closed.
                # Its cgroup, and its uid, are freed by a later start, once it is empty.
                self._abandon(cgroup, uid if own_uid else None, tenant if cpu_parent is not None else None)
            else:
                if own_uid:
                    self.uids.release(uid)
                if cpu_parent is not None and tenants is not None and tenant is not None:
                    tenants.release(tenant)
            raise
        if cpu_parent is not None:
            sandbox.tenant = tenant
        self.alive.add(sandbox)
        self.stats["sandboxes_started"] += 1
        try:
            await sandbox.wait_ready(READY_TIMEOUT)
        except BaseException:
            await self.destroy(sandbox, keep_workspace=not own_workspace, keep_uid=not own_uid)
            if sandbox.lost is not None:
                raise RestartingError(f"the sandbox was lost while starting: {sandbox.lost}",
                                      retry_after=supervisor.retry_after()) from None
            raise
        return sandbox

    def _abandon(self, cgroup: cgroups.SandboxCgroup, uid: int | None, tenant: str | None) -> None:
        self._abandoned.append((cgroup, uid, tenant))
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        while self._abandoned and not self.closed:
            await asyncio.sleep(SWEEP_EVERY)
            await self._remove_abandoned()

    async def _remove_abandoned(self) -> None:
        """Remove the abandoned cgroups that are empty by now; free their uids and tenants' groups."""
        abandoned, self._abandoned = self._abandoned, []
        removed = await asyncio.to_thread(lambda: [cgroup.remove() for cgroup, _, _ in abandoned])
        for (cgroup, uid, tenant), gone in zip(abandoned, removed, strict=True):
            if not gone:
                self._abandoned.append((cgroup, uid, tenant))
                continue
            if uid is not None:
                self.uids.release(uid)
            if tenant is not None and self.cgroups is not None and self.cgroups.tenants is not None:
                self.cgroups.tenants.release(tenant)

    def place(self, sandbox: Sandbox, tenant: str) -> None:
        """Move a sandbox taken from the pool into its tenant's cpu group, in the background (see
        ``SandboxCgroup.place_cpu``): the run it was taken for starts meanwhile, in the pool's group."""
        tenants = self.cgroups.tenants if self.cgroups is not None else None
        cgroup = sandbox.cgroup
        if tenants is None or cgroup is None or sandbox.tenant is not None or sandbox not in self.alive:
            return  # (not in alive: its teardown has begun)
        parent = tenants.acquire(tenant)
        sandbox.tenant = tenant
        sandbox.placing = asyncio.ensure_future(asyncio.to_thread(cgroup.place_cpu, parent, sandbox.limits.cpus))
        sandbox.placing.add_done_callback(_log_placement)

    def rlimits_for(self, limits: Limits, *, has_cgroup: bool, zygote: Zygote | None = None) -> dict[str, list[int]]:
        """A new sandbox's rlimits. Without a cgroup, rlimits are all there is: RLIMIT_NPROC is the process
        limit, and the memory limit becomes an address-space limit on top of what the zygote already maps."""
        if has_cgroup:
            # RLIMIT_NPROC is only a backstop (at the maximum, so a run's pids limit can be raised from outside).
            return rlimits_for(limits, self.config.max_limits.pids, limits.address_space)
        inherited = int((zygote or self.zygote).info.get("vm_bytes", 0))
        return rlimits_for(limits, limits.pids, min(limits.address_space, inherited + limits.memory))

    def free_disk(self) -> tuple[int, int] | None:
        """(bytes, inodes) free on the state directory's disk, which holds the workspaces' directories and
        mount points (the workspaces themselves too, without root); None: it cannot be told."""
        return resources.disk_free(self.instance.path)

    async def resize_workspace(self, workspace: Workspace, size_bytes: int) -> None:
        await asyncio.to_thread(self.workspaces.resize, workspace, size_bytes)

    async def destroy(self, sandbox: Sandbox, *, keep_workspace: bool, keep_uid: bool = False) -> None:
        """Kill a sandbox and release what it held. Safe to call twice."""
        if sandbox not in self.alive:
            return
        self.alive.discard(sandbox)
        sandbox.kill("destroyed")
        if sandbox.egress is not None:
            proxy, sandbox.egress = sandbox.egress, None
            await proxy.close()
        exited = None
        uid_freed = False
        try:
            exited = await sandbox.wait_exit(EXIT_WAIT)
        finally:
            # Even when cancelled (at engine shutdown), never leave our ends open; the
            # engine's own shutdown removes whatever cgroups and workspaces remain.
            sandbox.close_io()
            # A uid is free again only once nothing of the sandbox can still run under it.
            if not keep_uid and (exited is not None or self.closed):
                self.uids.release(sandbox.uid)
                uid_freed = True
        if sandbox.placing is not None:
            # Never remove its cgroups while a worker thread makes or fills the new one.
            with contextlib.suppress(Exception):
                await asyncio.shield(sandbox.placing)
        removed = sandbox.cgroup is None
        if sandbox.cgroup is not None:
            for _ in range(CGROUP_REMOVE_TRIES):
                if await _blocking(sandbox.cgroup.remove):
                    removed = True
                    break
                await asyncio.sleep(0.02)
        if removed:
            if not keep_uid and not uid_freed:
                if sandbox.cgroup is not None:
                    self.uids.release(sandbox.uid)  # its cgroups were empty: nothing of it runs any more
                else:
                    log.warning("sandlot: sandbox %d did not exit; its uid %d stays reserved", sandbox.pid, sandbox.uid)
            if sandbox.tenant is not None and self.cgroups is not None and self.cgroups.tenants is not None:
                self.cgroups.tenants.release(sandbox.tenant)
        else:
            # Processes of it are still dying (a killed fork bomb held back by a busy host): a later start
            # removes its cgroups once they are empty, then frees its uid and its tenant's group.
            assert sandbox.cgroup is not None
            log.warning("sandlot: sandbox %d is still exiting; its cgroups and uid are freed once it is gone",
                        sandbox.pid)
            self._abandon(sandbox.cgroup, None if keep_uid or uid_freed else sandbox.uid, sandbox.tenant)
        sandbox.tenant = None
        if not keep_workspace:
            await _blocking(self.remove_workspace, sandbox.workspace)
        self.stats["sandboxes_destroyed"] += 1

    def remove_workspace(self, workspace: Workspace) -> None:
        self.workspaces.remove(workspace)
        if self.isolation == LANDLOCK:
            remove_tree(workspace.path + ".tmp", is_mount=False)

    async def close(self) -> None:
        """Kill every sandbox, stop the zygote, remove every cgroup and workspace of ours."""
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()  # remove_leftovers takes what is left
            with contextlib.suppress(BaseException):
                await self._sweeper
        for sandbox in list(self.alive):
            sandbox.kill("shutdown")
        await asyncio.gather(*(self.destroy(s, keep_workspace=False) for s in list(self.alive)),
                             return_exceptions=True)
        await self.supervisor.stop()
        for lane in self.lane_supervisors:
            await lane.stop()
        await self.remove_leftovers()

    async def remove_leftovers(self) -> None:
        if self.cgroups is not None:
            for _ in range(100):
                self.cgroups.remove_all()
                if not self.cgroups.any_left():
                    break
                await asyncio.sleep(0.02)
        self.workspaces.remove_all()


async def _blocking(func: Callable[..., T], *args: Any) -> T:
    """``asyncio.to_thread(func, ...)``, or ``func`` right here when no thread can be started (the server's
    pids limit is reached): a teardown that gives up half-way would leave its mount and cgroup behind."""
    try:
        return await asyncio.to_thread(func, *args)
    except RuntimeError as exc:
        if "can't start new thread" not in str(exc):
            raise
        return func(*args)


def _log_placement(done: asyncio.Future[None]) -> None:
    # The sandbox may be gone by the time the thread runs (a short run, a kill): nothing to place then.
    if not done.cancelled() and done.exception() is not None:
        log.debug("sandlot: a sandbox could not be placed in its tenant's cpu group: %s", done.exception())


async def _in_thread(undo: Callable[[T], object], func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread(func, ...)``, except that a cancellation does not lose what ``func`` makes: the
    thread runs on, and ``undo`` gets its result once it is done (a workspace unmounted, a cgroup removed)."""
    task = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda done: None if done.cancelled() or done.exception() else undo(done.result()))
        raise


def rlimits_for(limits: Limits, nproc: int, address_space: int) -> dict[str, list[int]]:
    """The rlimits a sandbox starts with, ``Limits`` in the runtime's terms."""
    cpu = max(1, int(limits.cpu_seconds + 0.999))
    return {
        # Soft: this run's CPU budget (the runtime moves it per cell). Hard: unlimited, the
        # host's wall-clock timeout is the backstop that always holds.
        "cpu": [cpu, -1],
        "fsize": [limits.file_size, limits.file_size],
        "nofile": [limits.open_files, limits.open_files],
        "nproc": [nproc, nproc],
        "core": [0, 0],
        "as": [address_space, address_space],
    }


def _outermost(paths: list[str]) -> list[str]:
    """The directories of ``paths`` not inside another of them, sorted (each is bound once)."""
    dirs: list[str] = []
    for path in sorted(os.path.realpath(p) for p in paths if os.path.isdir(p)):
        if not any(path == d or path.startswith(d + "/") for d in dirs):
            dirs.append(path)
    return dirs


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
