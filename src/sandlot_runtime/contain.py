"""The containment checklist: every mechanism, applied in order.

Read this function top to bottom and you know how a sandbox is contained. It
runs in the child the zygote has just forked (already pid 1 of a fresh pid
namespace in ``namespaces`` mode) and either completes every step or raises,
in which case the child exits without running any user code.

Order matters:
 1. die with the zygote          (PR_SET_PDEATHSIG, for the steps below)
 2. keep only our fds            (the zygote's control socket must not leak)
 3. join the memory+pids cgroups (before the cgroup namespace, so it is its root)
 4. unshare mount/net/ipc/uts/cgroup namespaces
 5. build the root and pivot     (needs root; /proc of the new pid namespace)
 6. hostname                     (in the new UTS namespace)
 -- degraded mode replaces 4-6 with: own process group, no_new_privs, Landlock rules --
 7. rlimits, normal priority     (before dropping privileges: raising either needs root)
 8. drop capabilities and uid/gid, then die with the zygote for good (the uid change cleared 1)
 9. no_new_privs, then seccomp   (last: the filter would deny the steps above, and re-arming 8;
                                 a sandbox with network gets the program that allows TCP sockets)
10. a clean environment
"""

from __future__ import annotations

import os
from collections.abc import Callable

from . import _libc, cgroups, credentials, fds, landlock, limits, namespaces, parent_death, rootfs, seccomp
from .spec import LANDLOCK, NAMESPACES, SandboxSpec, ZygoteSetup

WORKDIR = rootfs.WORKSPACE


def _no_mark(step: str) -> None:
    pass


def contain(setup: ZygoteSetup, spec: SandboxSpec, channel_fd: int, stdout_fd: int, stderr_fd: int,
            life_fd: int, mark: Callable[[str], None] = _no_mark) -> int:
    """Contain the calling process; returns the channel's fd number afterwards.

    ``mark(step)`` is called after each step with its name: benchmarks/bench_sandbox_cost.py times the steps
    with it, so the bench measures this very function rather than a copy of its order.
    """
    parent_death.set_now()
    mark("1 parent-death signal")
    channel_fd = fds.install(channel_fd, stdout_fd, stderr_fd, life_fd)
    mark("2 fds")

    # Where the host gave cgroups (it does whenever it runs as root), join them in either mode.
    cgroups.join(spec.cgroup_procs)
    mark("3 join cgroups")

    if spec.network and (setup.isolation != NAMESPACES or not setup.seccomp_bpf_network):
        raise ValueError("network needs namespaces mode (its own network namespace) and the network program")
    if setup.isolation == NAMESPACES:
        namespaces.unshare_all_but_pid()
        mark("4 unshare namespaces")
        rootfs.build_and_enter(
            mountpoint=setup.root_mountpoint, ro_dirs=setup.ro_dirs + spec.ro_dirs, ro_files=setup.ro_files,
            workspace=spec.workspace, tmp_size=spec.tmp_size, uid=spec.uid, gid=spec.uid,
            hostname=setup.hostname,
        )
        mark("5 root file system + pivot_root")
        _libc.sethostname(setup.hostname)
        mark("6 hostname")
        workdir, tmpdir = WORKDIR, "/tmp"
    elif setup.isolation == LANDLOCK:
        os.setpgid(0, 0)  # the host kills the whole group; seccomp then forbids leaving it
        # Without CAP_SYS_ADMIN (a server that is not root) the kernel lets a process restrict
        # itself with Landlock only under no_new_privs, so it comes first here.
        seccomp.set_no_new_privs()
        landlock.restrict(read_only=setup.ro_dirs + setup.ro_files, read_write=[spec.workspace, spec.tmp_dir])
        os.chdir(spec.workspace)
        mark("4-6 process group, no_new_privs, Landlock")
        workdir, tmpdir = spec.workspace, spec.tmp_dir
    else:
        raise ValueError(f"unknown isolation {setup.isolation!r}")

    as_root = os.getuid() == 0
    limits.apply(spec.rlimits)
    if as_root:
        os.setpriority(os.PRIO_PROCESS, 0, 0)  # back from the zygote's low priority (needs root)
    mark("7 rlimits, priority")
    if as_root:
        credentials.drop_to(spec.uid, spec.uid)
    parent_death.arm(fds.LIFE_FD)
    mark("8 capabilities, uid, parent-death again")
    seccomp.set_no_new_privs()
    # With network: TCP sockets too, only ever to what the sandbox's own network namespace holds (the host's
    # egress proxy, listening there); without, Unix sockets only.
    seccomp.load(setup.seccomp_bpf_network if spec.network else setup.seccomp_bpf)
    mark("9 no_new_privs + seccomp")

    os.environ.clear()
    os.environ.update(base_environment(workdir, tmpdir))
    os.environ.update(spec.env)
    mark("10 environment")
    return channel_fd


def base_environment(workdir: str, tmpdir: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": tmpdir,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": tmpdir + "/matplotlib",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
