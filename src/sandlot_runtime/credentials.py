"""Mechanism: give up root for good.

Drop every capability from the bounding set (so nothing can be regained, even
through a setuid binary), then switch group and user ids. With all of real,
effective and saved uid non-zero, the kernel clears the permitted and effective
capability sets as well.
"""

from __future__ import annotations

import os

from . import _libc


def _read_last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
        return int(f.read())


# Read once, in the zygote: by the time a sandbox drops privileges, /proc may be
# out of its reach (Landlock in degraded mode).
LAST_CAP = _read_last_cap()


def drop_to(uid: int, gid: int) -> None:
    for cap in range(LAST_CAP + 1):
        _libc.prctl(_libc.PR_CAPBSET_DROP, cap)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    # Changing uid made us non-dumpable, which hands /proc/self to root: the
    # sandbox could not read its own fds or status. Dumpable again is safe here
    # (ptrace is denied by seccomp, core dumps by RLIMIT_CORE=0).
    _libc.prctl(_libc.PR_SET_DUMPABLE, 1)

