"""Mechanism: resource limits (rlimits).

Notes for pid 1: it ignores signals that have no handler, so RLIMIT_CPU's soft
limit (SIGXCPU) only helps because the runtime installs a handler for it; the
hard limit (SIGKILL) is what is enforced.
"""

from __future__ import annotations

import resource

_NAMES = {
    "cpu": resource.RLIMIT_CPU,
    "fsize": resource.RLIMIT_FSIZE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "core": resource.RLIMIT_CORE,
    "as": resource.RLIMIT_AS,
    "memlock": resource.RLIMIT_MEMLOCK,
}


def apply(rlimits: dict[str, list[int]]) -> None:
    """Set each named limit to ``[soft, hard]``; -1 means unlimited."""
    for name, (soft, hard) in rlimits.items():
        resource.setrlimit(_NAMES[name], (_value(soft), _value(hard)))


def _value(limit: int) -> int:
    return resource.RLIM_INFINITY if limit < 0 else limit
