#!/usr/bin/env python3
"""Run a command in a throwaway pid namespace under a memory + pids cgroup.

The test suite runs hostile code on purpose. If containment ever failed, a
fork bomb or memory bomb here must not take the machine down, and nothing may
outlive the run: every process is in the new pid namespace (all die with it)
and the cgroup caps the memory and process count of everything inside.

The run also gets a cpu cgroup of its own (no limit): the engines inside make
their cpu groups below it, so runs side by side do not see each other's groups
as leftovers. Whatever a crashed engine left below the run's cgroups is removed
with them at the end.

Usage: scripts/contained.py COMMAND [ARGS...]
Env: SANDLOT_TEST_MEMORY (bytes, default 12 GiB), SANDLOT_TEST_PIDS (default 8192).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

CONTROLLERS = ("memory", "pids", "cpu")


def own_cgroup_dirs() -> dict[str, str]:
    """controller -> directory of our cgroup, for memory, pids and cpu, v1 or v2."""
    found: dict[str, str] = {}
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _, after = line.partition(" - ")
            tail = after.split()
            if tail and tail[0] in ("cgroup", "cgroup2"):
                mounts[before.split()[4]] = (tail[0], set(tail[2].split(",")))
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.strip().split(":", 2)
            for mount, (fstype, options) in mounts.items():
                if fstype == "cgroup" and controllers:
                    for c in CONTROLLERS:
                        if c in controllers.split(",") and c in options:
                            found.setdefault(c, mount + path)
                elif fstype == "cgroup2" and not controllers:
                    directory = mount + path
                    with contextlib.suppress(OSError), open(os.path.join(directory, "cgroup.controllers")) as cf:
                        for c in cf.read().split():
                            if c in CONTROLLERS:
                                found.setdefault(c, directory)
    return found


def main() -> int:
    command = sys.argv[1:]
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("contained.py: not root or no unshare; running uncontained", file=sys.stderr)
        return subprocess.call(command)
    memory = os.environ.get("SANDLOT_TEST_MEMORY", str(12 << 30))
    pids = os.environ.get("SANDLOT_TEST_PIDS", "8192")
    created = []
    for controller, parent in own_cgroup_dirs().items():
        path = os.path.join(parent, f"sandlot-tests-{os.getpid()}")
        if path in created:
            continue
        os.makedirs(path, exist_ok=True)
        created.append(path)
        limits = {"memory": ("memory.limit_in_bytes", "memory.max"), "pids": ("pids.max", "pids.max"),
                  "cpu": ()}[controller]
        for name in limits:
            with contextlib.suppress(OSError), open(os.path.join(path, name), "w") as f:
                f.write(memory if controller == "memory" else pids)
    child = subprocess.Popen(
        # A private /run/sandlot per run: every contained run's first process is pid 1 in its own
        # namespace, so concurrent runs would otherwise share one state directory.
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c",
         'mkdir -p /run/sandlot && mount -t tmpfs -o mode=0711 sandlot-tests /run/sandlot && exec "$@"', "sh", *command],
        preexec_fn=lambda: [open(os.path.join(p, "cgroup.procs"), "w").write("0") for p in created],
    )
    # Stopped with SIGTERM (kill, timeout(1), a CI runner), the run still ends its child and removes its cgroups.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()
        return child.wait() or 130  # an interrupted run never reports success
    finally:
        for path in created:
            remove_tree(path)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def remove_tree(path: str) -> None:
    """Remove a cgroup and every group below it, deepest first. Every process of the run is gone by now
    (its pid namespace died with it), but a group can take a moment to notice its last one left."""
    for directory, _, _ in os.walk(path, topdown=False):  # each group once, below ones first, ``path`` last
        for _ in range(100):
            try:
                os.rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
