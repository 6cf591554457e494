"""The seccomp policy: an allowlist, compiled once into BPF with libseccomp.

Every system call not named here fails with EPERM. The list is what CPython,
numpy, pandas, matplotlib, ``subprocess`` and ordinary shell tools need; it
leaves out (among others) ptrace, mount and the new mount API, unshare, setns,
pivot_root, chroot, bpf, perf_event_open, the keyring, kexec and modules,
process_vm_*, userfaultfd, io_uring, name_to_handle_at/open_by_handle_at and
kcmp. Four calls are allowed only with safe arguments:

- ``clone`` without any ``CLONE_NEW*`` flag (no new namespaces);
- ``socket``/``socketpair`` for ``AF_UNIX`` only (no network of any kind:
  IP, raw, packet, netlink...);
- ``personality`` only to query or to keep the default persona;
- ``prctl`` for anything but ``PR_SET_PDEATHSIG``: the sandbox dies with its
  zygote (``sandlot_runtime.parent_death``), and its code cannot undo that.

``clone3`` gets ENOSYS instead: its flags sit behind a pointer the filter
cannot read, and ENOSYS makes glibc fall back to ``clone``.

A sandbox with network (``build_program(network=True)``, the egress proxy's) may also make TCP sockets:
``AF_INET``/``AF_INET6`` with type ``SOCK_STREAM`` (with ``SOCK_NONBLOCK``/``SOCK_CLOEXEC``) and protocol 0
or TCP; still no UDP, raw, packet or netlink. Its network namespace has no route out: those sockets reach
only the host's proxy listening in there (``sandlot.egress``).

In degraded (Landlock) mode the sandbox shares the host's pid namespace and
is killed as a process group, so ``setsid`` and ``setpgid`` are denied too.
"""

from __future__ import annotations

import errno
import tempfile
from typing import Any

from .._errors import SetupError

ALLOWED = frozenset("""
accept accept4 access alarm arch_prctl bind brk capget capset chdir chmod chown clock_getres
clock_gettime clock_nanosleep close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_pwait epoll_pwait2 epoll_wait eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64 fallocate fchdir fchmod
fchmodat fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstatfs fsync ftruncate futex futex_waitv futimesat getcpu
getcwd getdents getdents64 getegid geteuid getgid getgroups getitimer get_mempolicy
getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresuid
getrlimit get_robust_list getrusage getsid getsockname getsockopt gettid gettimeofday getuid
getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch ioctl io_cancel
io_destroy io_getevents io_pgetevents ioprio_get io_setup io_submit kill lchown lgetxattr
link linkat listen listxattr llistxattr lremovexattr lseek lsetxattr lstat madvise mbind
membarrier memfd_create mincore mkdir mkdirat mknod mknodat mlock mlock2 mmap mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget
msgrcv msgsnd msync munlock munmap nanosleep newfstatat open openat openat2 pause pipe pipe2
poll ppoll pread64 preadv preadv2 prlimit64 pselect6 pwrite64 pwritev pwritev2 read
readahead readlink readlinkat readv recvfrom recvmmsg recvmsg remap_file_pages removexattr
rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
sched_getscheduler sched_rr_get_interval sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop sendfile
sendmmsg sendmsg sendto set_mempolicy setfsgid setfsuid setgid setgroups setitimer
setpriority setregid setresgid setresuid setreuid setrlimit set_robust_list setsockopt
set_tid_address setuid setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
signalfd4 splice stat statfs statx symlink symlinkat sync sync_file_range syncfs sysinfo tee
tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_settime
timerfd_create timerfd_gettime timerfd_settime times tkill truncate umask uname unlink
unlinkat utime utimensat utimes vfork vmsplice wait4 waitid write writev
""".split())

PROCESS_GROUP_CALLS = frozenset({"setsid", "setpgid"})
"""Allowed with namespaces (the whole pid namespace dies at once), denied in degraded mode."""

CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_TYPE_MASK = 0xF
"""The socket type without SOCK_NONBLOCK and SOCK_CLOEXEC."""
IPPROTO_TCP = 6
PERSONALITY_QUERY = 0xFFFFFFFF
PR_SET_PDEATHSIG = 1


BINARY_TREE = 2
"""libseccomp's ``SCMP_FLTATR_CTL_OPTIMIZE`` level that lays the syscall checks out as a binary search tree
instead of one long chain. The same rules, compiled differently (``tests/test_seccomp_program.py`` runs both
programs on every syscall number and the argument cases the rules test, and gets the same verdicts): the kernel
checks a syscall in ~9 comparisons instead of up to ~300, and, what costs more here, each sandbox's attach is
~0.08 ms of CPU instead of ~0.29 ms (the kernel emulates the whole program once per syscall number to build its
action cache, with interrupts off)."""


def build_program(*, allow_process_groups: bool, network: bool = False, optimize: int = BINARY_TREE) -> bytes:
    """Compile the policy to a BPF program for this machine's architecture (``optimize``: libseccomp's level,
    1 for its plain chain)."""
    try:
        import pyseccomp as sc
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise SetupError("the pyseccomp package (and libseccomp2) is needed to build the seccomp filter") from exc

    program = sc.SyscallFilter(sc.ERRNO(errno.EPERM))
    program.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    program.set_attr(sc.Attr.CTL_OPTIMIZE, optimize)
    names = ALLOWED | PROCESS_GROUP_CALLS if allow_process_groups else ALLOWED
    for name in sorted(names):
        if _known(sc, name):
            program.add_rule(sc.ALLOW, name)
    program.add_rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_NEW_FLAGS, 0))
    program.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    program.add_rule(sc.ALLOW, "socket", sc.Arg(0, sc.EQ, AF_UNIX))
    program.add_rule(sc.ALLOW, "socketpair", sc.Arg(0, sc.EQ, AF_UNIX))
    if network:
        for family in (AF_INET, AF_INET6):
            for protocol in (0, IPPROTO_TCP):
                program.add_rule(sc.ALLOW, "socket", sc.Arg(0, sc.EQ, family),
                                 sc.Arg(1, sc.MASKED_EQ, SOCK_TYPE_MASK, SOCK_STREAM), sc.Arg(2, sc.EQ, protocol))
    program.add_rule(sc.ALLOW, "personality", sc.Arg(0, sc.EQ, PERSONALITY_QUERY))
    program.add_rule(sc.ALLOW, "personality", sc.Arg(0, sc.EQ, 0))
    program.add_rule(sc.ALLOW, "prctl", sc.Arg(0, sc.NE, PR_SET_PDEATHSIG))
    with tempfile.TemporaryFile() as f:
        program.export_bpf(f)
        f.seek(0)
        return f.read()


def _known(sc: Any, name: str) -> bool:
    try:
        return bool(sc.resolve_syscall(sc.system_arch(), name) >= 0)
    except Exception:
        return False


__all__ = ["ALLOWED", "build_program"]
