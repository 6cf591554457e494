"""Mechanism: the sandbox's file system view.

Builds a small root on a tmpfs (read-only binds of ``/usr`` and the Python
installation, a few synthesized ``/etc`` files, a minimal ``/dev``, its own
``/proc``, a size-capped ``/tmp`` and the workspace), pivots into it and
detaches the host's tree. Must run as root inside fresh mount and pid
namespaces (the new ``/proc`` shows only the sandbox's own pid namespace).
"""

from __future__ import annotations

import os

from . import _libc
from ._libc import MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT

WORKSPACE = "/workspace"
HOME_ALIAS = "/home/user"
DEVICES = ("null", "zero", "full", "random", "urandom")
# Debian's merged /usr: these are symlinks into /usr on the host; recreate them.
USR_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def build_and_enter(
    *,
    mountpoint: str,
    ro_dirs: list[str],
    ro_files: list[str],
    workspace: str,
    tmp_size: int,
    uid: int,
    gid: int,
    hostname: str,
) -> None:
    """Assemble the root at ``mountpoint`` (an empty host directory) and pivot into it."""
    _libc.mount(None, "/", None, MS_REC | MS_PRIVATE)
    _libc.mount("tmpfs", mountpoint, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    root = mountpoint.rstrip("/")

    # /tmp first: the Python installation may live under /tmp (a venv there), and its
    # read-only bind must sit on top of the sandbox's /tmp, not be hidden by it.
    os.mkdir(root + "/tmp", 0o1777)
    _libc.mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_size},mode=1777")

    for path in ro_dirs:
        _bind_readonly(path, root + path, is_dir=True)
    for path in ro_files:
        _bind_readonly(path, root + path, is_dir=False)
    for name in USR_LINKS:
        if os.path.islink("/" + name) and not os.path.lexists(f"{root}/{name}"):
            os.symlink(os.readlink("/" + name), f"{root}/{name}")

    _write_etc(root, uid=uid, gid=gid, hostname=hostname)
    _make_dev(root, tmp_size=tmp_size)

    os.makedirs(root + WORKSPACE, exist_ok=True)
    _libc.mount(workspace, root + WORKSPACE, None, MS_BIND)
    _libc.mount(None, root + WORKSPACE, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
    # E2B's SDKs work in /home/user (docs/e2b.md): an alias of the workspace, a symlink in the root that the
    # final read-only remount freezes; nothing new is reachable through it.
    os.makedirs(root + "/home", mode=0o755, exist_ok=True)  # a read-only bind may have made it (a venv in /home)
    if not os.path.lexists(root + HOME_ALIAS):
        os.symlink(WORKSPACE, root + HOME_ALIAS)

    os.makedirs(root + "/proc", exist_ok=True)
    _libc.mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # Nothing under /proc/sys is the sandbox's to change, whatever its privileges.
    _bind_readonly(root + "/proc/sys", root + "/proc/sys", is_dir=True)

    os.chdir(root)
    os.mkdir("oldroot")
    _libc.pivot_root(".", "oldroot")
    os.chdir("/")
    _libc.umount2("/oldroot", MNT_DETACH)
    os.rmdir("/oldroot")
    _libc.mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(WORKSPACE)


def _bind_readonly(source: str, target: str, *, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    _libc.mount(source, target, None, MS_BIND)
    # A bind mount ignores MS_RDONLY on its first mount; it takes a remount.
    _libc.mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _write_etc(root: str, *, uid: int, gid: int, hostname: str) -> None:
    etc = root + "/etc"
    os.makedirs(etc, exist_ok=True)
    files = {
        "passwd": f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nsandbox:x:{uid}:{gid}:sandbox:{WORKSPACE}:/bin/sh\n",
        "group": f"root:x:0:\nsandbox:x:{gid}:\n",
        "hostname": hostname + "\n",
        "hosts": f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    }
    for name, text in files.items():
        with open(f"{etc}/{name}", "w") as f:
            f.write(text)
    if not os.path.lexists(etc + "/localtime"):
        os.symlink("/usr/share/zoneinfo/Etc/UTC", etc + "/localtime")


def _make_dev(root: str, *, tmp_size: int) -> None:
    dev = root + "/dev"
    os.makedirs(dev, exist_ok=True)
    for name in DEVICES:
        target = f"{dev}/{name}"
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o666))
        _libc.mount("/dev/" + name, target, None, MS_BIND)
        _libc.mount(None, target, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    # POSIX semaphores (multiprocessing) live in /dev/shm.
    os.mkdir(dev + "/shm", 0o1777)
    _libc.mount("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"size={min(tmp_size, 64 << 20)},mode=1777")

