"""The host running out: what a failure to make a sandbox means, and how full the state disk is.

Making a sandbox takes a uid, a directory and a mount on the state directory's disk, a cgroup,
file descriptors, a worker thread and a fork. When the host runs out of one of those (a
full disk, the pids or memory limit of the server's own cgroup, the fd limit), the error
is ``ResourceExhaustedError``: a 503 with ``Retry-After`` that names what ran out, not a
500 with an errno. ``translate`` is that one seam; health reads ``disk_free``.
"""

from __future__ import annotations

import errno
import os

from .._errors import ResourceExhaustedError, SandlotError, SpawnError

DISK_RETRY_AFTER = 5.0
"""A full disk is not freed in a second: clients wait longer before they try again."""
MIN_FREE_DISK = 16 << 20
MIN_FREE_INODES = 1024
"""Below either, health says the state directory's disk is full: the next sandbox's directories and
mount points need room there (on an ordinary filesystem a directory takes a block; on a tmpfs an inode)."""

_DISK = (errno.ENOSPC, errno.EDQUOT)
_PROCESSES = (errno.EAGAIN, errno.ENOMEM)
_FILES = (errno.EMFILE, errno.ENFILE)


def exhausted(exc: BaseException) -> ResourceExhaustedError | None:
    """The ``ResourceExhaustedError`` that ``exc`` means, or None when it is not the host running out."""
    if isinstance(exc, ResourceExhaustedError):
        return exc
    if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
        return ResourceExhaustedError("the server could not start a thread: it is out of processes "
                                      "(its cgroup's pids limit, or the system's)")
    if not isinstance(exc, OSError):
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in _DISK:
        return ResourceExhaustedError(f"no room left on the state directory's disk{where}: {exc.strerror}",
                                      retry_after=DISK_RETRY_AFTER)
    if exc.errno in _PROCESSES:
        return ResourceExhaustedError(f"the server is out of processes or memory (its cgroup's limits, or the "
                                      f"system's){where}: {exc.strerror}")
    if exc.errno in _FILES:
        return ResourceExhaustedError(f"the server is out of file descriptors{where}: {exc.strerror}")
    return None


def translate(exc: BaseException) -> BaseException:
    """What to raise instead of ``exc``, a failure while making a sandbox: the host running out
    is ``ResourceExhaustedError``, another OS error a ``SpawnError``; anything else stays as it is."""
    found = exhausted(exc)
    if found is not None:
        return found
    if isinstance(exc, OSError) and not isinstance(exc, SandlotError):
        return SpawnError(f"a sandbox could not be made: {exc}")
    return exc


def spawn_failure(message: str, error_number: int | None) -> SandlotError:
    """The error for the zygote's report that it could not fork (``error_number``: the fork's errno)."""
    if error_number in _PROCESSES:
        return ResourceExhaustedError(f"the zygote could not fork a sandbox: the server is out of processes or "
                                      f"memory (its cgroup's pids or memory limit, or the system's): {message}")
    return SpawnError(message)


def disk_free(path: str) -> tuple[int, int] | None:
    """(bytes, inodes) free for us on the disk that holds ``path`` (None: it cannot be told)."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    inodes = stats.f_favail if stats.f_files else MIN_FREE_INODES  # 0 files: a filesystem that does not count them
    return stats.f_bavail * stats.f_frsize, inodes
