"""Mechanism: Linux namespaces.

A new pid namespace applies only to the children of the process that unshares
it, so the zygote enters one just for the fork and steps back right after: the
sandbox is born as pid 1 of its own namespace, with no waiting middle process.
The sandbox then unshares the rest itself.
"""

from __future__ import annotations

import os

from . import _libc

SANDBOX_NAMESPACES = (
    _libc.CLONE_NEWNS | _libc.CLONE_NEWNET | _libc.CLONE_NEWIPC | _libc.CLONE_NEWUTS | _libc.CLONE_NEWCGROUP
)


def open_own_pid_namespace() -> int:
    return os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)


def children_in_new_pid_namespace() -> None:
    """From now on, this process's children are born into a fresh pid namespace."""
    _libc.unshare(_libc.CLONE_NEWPID)


def children_in_own_pid_namespace(own_pid_ns_fd: int) -> None:
    """Undo ``children_in_new_pid_namespace``: a process may always re-enter its own."""
    _libc.setns(own_pid_ns_fd, _libc.CLONE_NEWPID)


def unshare_all_but_pid() -> None:
    """New mount, network, IPC, UTS and cgroup namespaces for the calling process."""
    _libc.unshare(SANDBOX_NAMESPACES)
