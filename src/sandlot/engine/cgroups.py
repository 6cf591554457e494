"""Host side of cgroups: one memory, pids and cpu cgroup per sandbox, v1 or v2.

Each controller is looked up where this host has it: on this machine type the
memory and pids controllers are on cgroup v1 hierarchies while the cgroup2
mount has neither, elsewhere both may be on cgroup2. sandlot nests its cgroups
under the server's own cgroup (``…/<ours>/sandlot-<pid>/sb-<uid>``), so limits
an operator placed on the server still bound all sandboxes together.

The sandbox moves itself in (``sandlot_runtime.cgroups``); the host creates the
cgroup, sets its limits, reads its counters after a run (to tell an OOM kill
from other deaths) and removes it once the sandbox is gone. The cpu controller
is optional (without it nothing is weighted or capped) and nests deeper: see
``cpu`` for its layout, and ``SandboxCgroup.place_cpu`` for how a pooled
sandbox moves to its tenant's group when it is taken.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

from . import cpu

CONTROLLERS = ("memory", "pids", "cpu")
"""In this order: ``members()`` reads the first one a sandbox has, and the cpu cgroup is the one that can change."""
PLACE_ROUNDS = 20


@dataclass(frozen=True)
class Hierarchy:
    """Where one controller lives: its mount, cgroup version, and our cgroup in it."""

    controller: str
    version: int
    mount: str
    own_path: str

    @property
    def own_dir(self) -> str:
        return os.path.join(self.mount, self.own_path.lstrip("/"))


def detect() -> dict[str, Hierarchy]:
    """The hierarchies that carry the memory, pids and cpu controllers for this process."""
    own_paths = _own_cgroup_paths()
    found: dict[str, Hierarchy] = {}
    for mount_point, fstype, options in _cgroup_mounts():
        if fstype == "cgroup":
            for controller in CONTROLLERS:
                if controller in options and controller in own_paths:
                    found.setdefault(controller, Hierarchy(controller, 1, mount_point, own_paths[controller]))
        elif fstype == "cgroup2" and "" in own_paths:
            own = os.path.join(mount_point, own_paths[""].lstrip("/"))
            available = _read(os.path.join(own, "cgroup.controllers")).split()
            for controller in CONTROLLERS:
                if controller in available:
                    found.setdefault(controller, Hierarchy(controller, 2, mount_point, own_paths[""]))
    return found


class SandboxCgroup:
    """The cgroups of one sandbox (one directory per hierarchy)."""

    def __init__(self, dirs: dict[str, tuple[Hierarchy, str]]) -> None:
        self._dirs = dirs
        self._peak_fd: int | None = None  # kept open: read (and reset) after every run
        self._left: list[str] = []
        """cpu cgroups the sandbox was moved out of: removed with the others."""
        self._weight_fd: int | None = None
        """A pooled sandbox's weight file, kept open: taking it from the pool is one write."""

    def wait_in_pool(self) -> None:
        """Weigh this pooled sandbox next to nothing in the pool's group until ``taken`` (see ``cpu``)."""
        found = self._dirs.get("cpu")
        if found is None:
            return
        hierarchy, path = found
        self._weight_fd = os.open(cpu.weight_file(hierarchy.version, path), os.O_WRONLY | os.O_CLOEXEC)
        os.write(self._weight_fd, cpu.weight_value(hierarchy.version, cpu.WAITING_SHARES).encode())

    def taken(self) -> None:
        """Out of the pool for a run: full weight again (on the request path: one write, no open)."""
        found = self._dirs.get("cpu")
        fd, self._weight_fd = self._weight_fd, None
        if fd is None or found is None:
            return
        try:
            os.write(fd, cpu.weight_value(found[0].version, cpu.RUNNING_SHARES).encode())
        except OSError:
            pass  # its cgroup is going (the sandbox is dead): nothing to weigh
        finally:
            os.close(fd)

    @property
    def cpu_dir(self) -> str | None:
        """The sandbox's cpu cgroup now (None without the cpu controller)."""
        found = self._dirs.get("cpu")
        return None if found is None else found[1]

    @property
    def procs_files(self) -> list[str]:
        return sorted({os.path.join(path, "cgroup.procs") for _, path in self._dirs.values()})

    def oom_kills(self) -> int:
        memory = self._dirs.get("memory")
        if memory is None:
            return 0
        hierarchy, path = memory
        name = "memory.oom_control" if hierarchy.version == 1 else "memory.events"
        return _counter(os.path.join(path, name), "oom_kill")

    def pids_limit_hits(self) -> int:
        pids = self._dirs.get("pids")
        return 0 if pids is None else _counter(os.path.join(pids[1], "pids.events"), "max")

    def peak_memory(self) -> int | None:
        fd = self._peak_file()
        if fd is None:
            return None
        try:
            return int(os.pread(fd, 64, 0))
        except (OSError, ValueError):
            return None

    def reset_peak_memory(self) -> None:
        memory = self._dirs.get("memory")
        fd = self._peak_file()
        if fd is not None and memory is not None and memory[0].version == 1:
            with contextlib.suppress(OSError):
                os.pwrite(fd, b"0", 0)

    def _peak_file(self) -> int | None:
        if self._peak_fd is None:
            memory = self._dirs.get("memory")
            if memory is None:
                return None
            hierarchy, path = memory
            name = "memory.max_usage_in_bytes" if hierarchy.version == 1 else "memory.peak"
            flags = os.O_RDWR if hierarchy.version == 1 else os.O_RDONLY
            try:
                self._peak_fd = os.open(os.path.join(path, name), flags | os.O_CLOEXEC)
            except OSError:
                return None
        return self._peak_fd

    def memory_now(self) -> int | None:
        """Bytes of memory the sandbox uses now (page cache of its files included, as the limit counts it)."""
        memory = self._dirs.get("memory")
        if memory is None:
            return None
        hierarchy, path = memory
        with contextlib.suppress(OSError, ValueError):
            return int(_read(os.path.join(path, "memory.usage_in_bytes" if hierarchy.version == 1 else "memory.current")))
        return None

    def pids_now(self) -> int | None:
        pids = self._dirs.get("pids")
        if pids is None:
            return None
        with contextlib.suppress(OSError, ValueError):
            return int(_read(os.path.join(pids[1], "pids.current")))
        return None

    def members(self) -> list[int]:
        """The pids of every process in the sandbox (as the host sees them)."""
        for _, path in self._dirs.values():
            with contextlib.suppress(OSError, ValueError):
                return [int(pid) for pid in _read(os.path.join(path, "cgroup.procs")).split()]
        return []

    def close(self) -> None:
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None
        if self._weight_fd is not None:
            os.close(self._weight_fd)
            self._weight_fd = None

    def set_limits(self, *, memory_bytes: int, pids: int, cpus: float) -> None:
        """Change a live sandbox's limits (for a run that asked for others than the pool's)."""
        for controller, (hierarchy, path) in self._dirs.items():
            _set_limit(controller, hierarchy.version, path, memory_bytes=memory_bytes, pids=pids, cpus=cpus)

    def place_cpu(self, parent: str, cpus: float) -> None:
        """Move the sandbox to a new cpu cgroup under ``parent`` (its tenant's group), capped at ``cpus``.

        A cgroup cannot change its parent, so the sandbox gets a new one, and every process in the old one
        moves over, in rounds (one may fork between a read and its move; the pids limit bounds that). What
        is still left in the old cgroup stays held by the old quota, and the old cgroup is removed with the
        others. Runs in a worker thread: a cgroup v1 move can wait for an RCU grace period (6-13 ms after
        an idle spell), so it never delays the run it was taken for."""
        found = self._dirs.get("cpu")
        if found is None:
            return
        hierarchy, old = found
        new = os.path.join(parent, os.path.basename(old))
        os.mkdir(new)
        try:
            cpu.set_quota(hierarchy.version, new, cpus)
            for _ in range(PLACE_ROUNDS):
                members = _read(os.path.join(old, "cgroup.procs")).split()
                if not members:
                    break
                for pid in members:
                    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                        _write(os.path.join(new, "cgroup.procs"), pid)
        finally:
            # Even half moved, the sandbox's cpu cgroup is the new one now: its run limits are set there.
            self._dirs["cpu"] = (hierarchy, new)
            self._left.append(old)
        with contextlib.suppress(OSError):
            os.rmdir(old)
            self._left.remove(old)

    def remove(self) -> bool:
        """Remove the directories; False while processes are still inside."""
        self.close()
        done = True
        for path in [*self._left, *(path for _, path in self._dirs.values())]:
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError:
                done = False
        return done


class CgroupManager:
    """Creates per-sandbox cgroups under ``<our cgroup>/sandlot-<pid>/`` (the cpu ones one level deeper)."""

    def __init__(self, hierarchies: dict[str, Hierarchy], instance: str) -> None:
        self.hierarchies = dict(hierarchies)
        self._parents: dict[str, str] = {}
        self.tenants: cpu.TenantGroups | None = None
        """Per-tenant cpu groups; None without the cpu controller, or with it on the same cgroup2 mount as
        memory and pids (one directory per sandbox there, so it cannot move to its tenant's group alone)."""
        for controller, hierarchy in hierarchies.items():
            parent = os.path.join(hierarchy.own_dir, instance)
            os.makedirs(parent, exist_ok=True)
            if hierarchy.version == 2 and controller != "cpu":
                _enable_v2_controllers(parent, [c for c, h in hierarchies.items()
                                                if h.mount == hierarchy.mount and c != "cpu"])
            self._parents[controller] = parent
        if "cpu" in hierarchies:
            self._set_up_cpu(hierarchies["cpu"])

    def _set_up_cpu(self, hierarchy: Hierarchy) -> None:
        parent = self._parents["cpu"]
        shared = any(h.mount == hierarchy.mount for c, h in self.hierarchies.items() if c != "cpu")
        try:
            if shared:
                _enable_v2_controllers(parent, ["cpu"])
                cpu.set_weight(hierarchy.version, parent, cpu.SANDBOXES_SHARES)
            else:
                cpu.make_group(hierarchy.version, parent, cpu.SANDBOXES_SHARES)
                cpu.make_group(hierarchy.version, os.path.join(parent, cpu.POOL), cpu.POOL_SHARES)
                self.tenants = cpu.TenantGroups(hierarchy.version, parent)
        except OSError:
            # Present but not ours to use (a v2 parent without cpu in its subtree_control, a read-only
            # mount): sandboxes run unweighted and uncapped, as on a host without the controller.
            if not shared:
                self.remove_tree(parent)
            del self.hierarchies["cpu"], self._parents["cpu"]
            self.tenants = None

    def create(self, name: str, *, memory_bytes: int, pids: int, cpus: float,
               cpu_parent: str | None = None) -> SandboxCgroup:
        """A sandbox's cgroups; its cpu one in ``cpu_parent`` (a tenant's group), else in the pool's."""
        dirs: dict[str, tuple[Hierarchy, str]] = {}
        for controller, hierarchy in self.hierarchies.items():
            parent = self._parents[controller]
            if controller == "cpu" and self.tenants is not None:
                parent = cpu_parent or os.path.join(parent, cpu.POOL)
            path = os.path.join(parent, name)
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
            dirs[controller] = (hierarchy, path)
            _set_limit(controller, hierarchy.version, path, memory_bytes=memory_bytes, pids=pids, cpus=cpus)
        made = SandboxCgroup(dirs)
        if self.tenants is not None and cpu_parent is None:
            try:
                made.wait_in_pool()
            except BaseException:
                made.remove()
                raise
        return made

    def remove_all(self) -> None:
        """Remove the per-instance parents (their children must be gone already)."""
        for parent in set(self._parents.values()):
            self.remove_tree(parent)

    def any_left(self) -> bool:
        """Whether any of the per-instance parents still exists."""
        return any(os.path.isdir(parent) for parent in self._parents.values())

    @staticmethod
    def kill_tree(parent: str, rounds: int = 20) -> None:
        """SIGKILL every process in a cgroup and below it (what a crashed engine left running).

        cgroup v2 has ``cgroup.kill``; v1 only lists the members, so kill them in rounds until
        none is left (a member may fork between a read and the kill; the pids limit bounds that)."""
        for _ in range(rounds):
            members: list[int] = []
            for path in [parent, *_descendants(parent)]:
                kill_file = os.path.join(path, "cgroup.kill")
                if os.path.exists(kill_file):
                    with contextlib.suppress(OSError):
                        _write(kill_file, "1")
                with contextlib.suppress(OSError):
                    members += [int(pid) for pid in _read(os.path.join(path, "cgroup.procs")).split()]
            if not members:
                return
            for pid in members:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    @staticmethod
    def remove_tree(parent: str) -> None:
        """rmdir a cgroup and every cgroup below it, deepest first; cgroups with processes left in them stay."""
        for child in reversed(_descendants(parent)):
            with contextlib.suppress(OSError):
                os.rmdir(child)
        with contextlib.suppress(OSError):
            os.rmdir(parent)


def _set_limit(controller: str, version: int, path: str, *, memory_bytes: int, pids: int, cpus: float) -> None:
    if controller == "memory":
        _set_memory_limit(version, path, memory_bytes)
    elif controller == "pids":
        _write(os.path.join(path, "pids.max"), str(pids))
    else:
        cpu.set_quota(version, path, cpus)


def _set_memory_limit(version: int, path: str, limit: int) -> None:
    if version == 1:
        # Where swap is accounted, cap memory+swap too, so the limit cannot spill into swap. v1
        # wants memsw >= memory at every moment: raise memsw first, lower memory first.
        memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
        try:
            raising = int(_read(os.path.join(path, "memory.limit_in_bytes"))) < limit
        except (OSError, ValueError):
            raising = False
        if raising:
            with contextlib.suppress(FileNotFoundError, PermissionError):
                _write(memsw, str(limit))
        _write(os.path.join(path, "memory.limit_in_bytes"), str(limit))
        with contextlib.suppress(FileNotFoundError, PermissionError):
            _write(memsw, str(limit))
    else:
        _write(os.path.join(path, "memory.max"), str(limit))
        with contextlib.suppress(FileNotFoundError):
            _write(os.path.join(path, "memory.swap.max"), "0")


def _enable_v2_controllers(parent: str, controllers: list[str]) -> None:
    _write(os.path.join(parent, "cgroup.subtree_control"), " ".join("+" + c for c in controllers))


def _own_cgroup_paths() -> dict[str, str]:
    """controller name -> our path in its hierarchy ("" for the cgroup2 hierarchy)."""
    paths: dict[str, str] = {}
    for line in _read("/proc/self/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            paths[""] = path
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def _cgroup_mounts() -> list[tuple[str, str, set[str]]]:
    mounts = []
    for line in _read("/proc/self/mountinfo").splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            mounts.append((fields[4], tail[0], set(tail[2].split(","))))
    return mounts


def _subdirs(path: str) -> list[str]:
    try:
        return [entry.path for entry in os.scandir(path) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _descendants(path: str) -> list[str]:
    """Every cgroup below ``path``, each before the ones below it."""
    found = []
    for child in _subdirs(path):
        found += [child, *_descendants(child)]
    return found


def _counter(path: str, key: str) -> int:
    try:
        for line in _read(path).splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
