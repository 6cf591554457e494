"""Thin ctypes bindings for the few system calls Python 3.11's ``os`` lacks.

Each wrapper raises ``OSError`` with the real errno on failure, so callers
handle failures exactly as they would for ``os`` functions.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

# <sched.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# <sys/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
CLONE_FS = 0x00000200
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 4
AT_FDCWD = -100

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_GET_PDEATHSIG = 2
SECCOMP_MODE_FILTER = 2

# x86_64 syscall numbers for calls glibc has no wrapper for.
_SYS_PIVOT_ROOT = 155
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446


def _check(result: int) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)))


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)))


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return None if s is None else os.fsencode(s)

    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)))


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(os.fsencode(target), ctypes.c_int(flags)))


def open_tree(path: str, flags: int) -> int:
    """A detached copy of the mount at ``path`` (with ``OPEN_TREE_CLONE``), as an fd for ``move_mount``."""
    return _check(_libc.syscall(ctypes.c_long(_SYS_OPEN_TREE), ctypes.c_int(AT_FDCWD), os.fsencode(path),
                                ctypes.c_uint(flags)))


def move_mount_fd(mount_fd: int, target: str) -> None:
    """Attach the detached mount ``mount_fd`` at ``target`` in the caller's mount namespace."""
    _check(_libc.syscall(ctypes.c_long(_SYS_MOVE_MOUNT), ctypes.c_int(mount_fd), b"", ctypes.c_int(AT_FDCWD),
                         os.fsencode(target), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)))


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(ctypes.c_long(_SYS_PIVOT_ROOT), os.fsencode(new_root), os.fsencode(put_old)))


def prctl(option: int, arg2: int | ctypes.c_void_p = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(
        _libc.prctl(ctypes.c_int(option), arg2 if isinstance(arg2, ctypes.c_void_p) else ctypes.c_ulong(arg2),
                    ctypes.c_ulong(arg3), ctypes.c_ulong(arg4), ctypes.c_ulong(arg5))
    )


def get_pdeathsig() -> int:
    """The calling thread's parent-death signal (0: none)."""
    value = ctypes.c_int(0)
    _check(_libc.prctl(ctypes.c_int(PR_GET_PDEATHSIG), ctypes.byref(value), 0, 0, 0))
    return value.value


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))))


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_seccomp_program(bpf: bytes) -> None:
    """Install a precompiled classic-BPF seccomp program (needs no_new_privs or CAP_SYS_ADMIN)."""
    if not bpf or len(bpf) % 8:
        raise ValueError("a seccomp program is a non-empty array of 8-byte instructions")
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
                       ctypes.byref(prog), ctypes.c_ulong(0), ctypes.c_ulong(0)))


def landlock_abi_version() -> int:
    """The kernel's Landlock ABI version, or 0 where Landlock is unavailable."""
    result = _libc.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(result), 0)


def landlock_create_ruleset(attr: ctypes.Structure) -> int:
    return _check(_libc.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr),
                                ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0)))


def landlock_add_path_rule(ruleset_fd: int, attr: ctypes.Structure) -> None:
    _check(_libc.syscall(ctypes.c_long(_SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset_fd), ctypes.c_int(1),
                         ctypes.byref(attr), ctypes.c_uint32(0)))


def landlock_restrict_self(ruleset_fd: int) -> None:
    _check(_libc.syscall(ctypes.c_long(_SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)))
