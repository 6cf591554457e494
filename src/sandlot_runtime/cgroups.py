"""Mechanism: join the sandbox's own cgroups (memory and pids).

The host creates one cgroup per sandbox in each controller's hierarchy (v1 or
v2, whichever has the controller) and sets its limits; the child only moves
itself in. It must do so before unsharing its cgroup namespace, so that the
namespace's root is the sandbox's own cgroup and it cannot see its siblings.
"""

from __future__ import annotations

import os


def join(procs_files: list[str]) -> None:
    """Move the calling process into each cgroup (``cgroup.procs`` paths)."""
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            # "0" means the writing process itself, in v1 and v2 alike.
            os.write(fd, b"0")
        finally:
            os.close(fd)
