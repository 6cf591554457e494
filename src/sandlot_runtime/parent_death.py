"""Mechanism: the sandbox dies with its zygote, and cannot opt out.

``PR_SET_PDEATHSIG`` is the first line: when the zygote (the sandbox's parent)
dies, the kernel sends SIGKILL to the sandbox, and as pid 1 of its own pid
namespace it takes every process in it along. The kernel clears the setting on
any credential change (prctl(2)), so it is set at the start, for the
containment steps, and armed again after the uid change; the seccomp policy
then refuses ``prctl(PR_SET_PDEATHSIG, …)``, so user code cannot clear it.

In the instant between the uid change and re-arming, a dying zygote would go
unnoticed. The life pipe closes that gap: the zygote holds its only write end
(every child closes its copy first thing), so an end-of-file on the read end
means the zygote is gone, and the sandbox exits before any user code runs.
"""

from __future__ import annotations

import os
import select
import signal

from . import _libc


class ZygoteGone(RuntimeError):
    """The zygote died during containment; this sandbox must not run."""


def set_now() -> None:
    _libc.prctl(_libc.PR_SET_PDEATHSIG, signal.SIGKILL)


def arm(life_fd: int) -> None:
    """Set the parent-death signal for good (after the uid change), check it took and the zygote lives."""
    set_now()
    if _libc.get_pdeathsig() != signal.SIGKILL:
        raise RuntimeError("the parent-death signal did not take")
    readable, _, _ = select.select([life_fd], [], [], 0)
    if readable and os.read(life_fd, 1) == b"":
        raise ZygoteGone("the zygote died while this sandbox was being contained")
    os.close(life_fd)
