"""Mechanism: keep only the channel, the output pipes and (for a moment) the life pipe.

The zygote's other descriptors (its control socket above all) must never reach
sandboxed code. Standard input becomes /dev/null; standard output and error
become the pipes the host reads.
"""

from __future__ import annotations

import os

CHANNEL_FD = 3


LIFE_FD = 4
"""The zygote's life pipe (read end), kept only until containment re-arms the parent-death signal."""


def install(channel_fd: int, stdout_fd: int, stderr_fd: int, life_fd: int) -> int:
    """Place the fds at 0-4, close everything else; returns the channel's new fd."""
    # Move our fds out of the low range first, so dup2 below cannot clobber them.
    moved = [os.dup(fd) for fd in (channel_fd, stdout_fd, stderr_fd, life_fd)]
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(moved[1], 1)
    os.dup2(moved[2], 2)
    os.dup2(moved[0], CHANNEL_FD)
    os.dup2(moved[3], LIFE_FD)
    for fd in (0, 1, 2, CHANNEL_FD, LIFE_FD):
        os.set_inheritable(fd, fd in (0, 1, 2))
    os.closerange(LIFE_FD + 1, 1 << 20)
    return CHANNEL_FD
