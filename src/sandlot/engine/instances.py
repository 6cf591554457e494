"""Engine instances on disk: each live engine owns a directory under the state dir.

An instance is ``<state_dir>/sandlot-<pid>-<hex>`` (and a cgroup of the same
name): its workspaces, mount points and lock file live there. The engine holds
an exclusive ``flock`` on the lock file for its whole life, so a free lock tells
a later engine, in whatever pid namespace, that the instance is dead and what it
left behind (mounts, directories, cgroups) can be removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import time

from sandlot_runtime import _libc

from . import cgroups

LOCK_FILE = "lock"
INSTANCE_NAME = re.compile(r"^sandlot-\d+-[0-9a-f]{6}$")
"""An engine instance's name: its directory under the state dir and its parent cgroup."""


class Instance:
    """This engine's directory under the state dir, locked while the engine lives."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.name = f"sandlot-{os.getpid()}-{secrets.token_hex(3)}"
        self.path = os.path.join(state_dir, self.name)
        self._lock_fd: int | None = None

    def create(self) -> None:
        """Clean up after dead instances, then make and lock ours."""
        cleanup_stale_instances(self.state_dir)
        os.makedirs(self.path, mode=0o711)
        self._lock_fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def remove(self) -> None:
        """Remove the directory and drop the lock (mounts under it must be gone already)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


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
    """Remove what dead sandlot engines of this state directory left behind: mounts, cgroups, directories.

    Only instances with a directory here are judged: a ``sandlot-*`` cgroup beside ours without one
    belongs to an engine on another state directory (another server in the same cgroup), alive or not,
    and is left alone. A dead instance's directory goes last, once its cgroups are gone, so that a
    cgroup that could not be removed yet is found again by the next start."""
    os.makedirs(state_dir, mode=0o711, exist_ok=True)
    dead = [name for name in os.listdir(state_dir)
            if INSTANCE_NAME.match(name) and not instance_is_live(os.path.join(state_dir, name))]
    for name in dead:
        for mount_point in sorted(mounts_under(os.path.join(state_dir, name)), reverse=True):
            with contextlib.suppress(OSError):
                _libc.umount2(mount_point, _libc.MNT_DETACH)
    left: set[str] = set()
    if os.geteuid() == 0:
        for hierarchy in cgroups.detect().values():
            for name in dead:
                path = os.path.join(hierarchy.own_dir, name)
                if os.path.isdir(path):
                    with contextlib.suppress(OSError):
                        # A crashed server's sandboxes died with it (their parent-death signal);
                        # whatever is still in its cgroups is killed now, so nothing of it runs on.
                        cgroups.CgroupManager.kill_tree(path)
                        cgroups.CgroupManager.remove_tree(path)
                    if os.path.isdir(path):
                        left.add(name)
    for name in dead:
        if name not in left:
            shutil.rmtree(os.path.join(state_dir, name), ignore_errors=True)


def mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path``, from this process's mount table."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mount_point = line.split()[4]
            if mount_point == path or mount_point.startswith(path + "/"):
                found.append(mount_point)
    return found
