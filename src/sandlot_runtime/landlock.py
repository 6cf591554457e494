"""Mechanism (degraded mode): Landlock file system, network and scope rules.

Used where namespaces are not available (an unprivileged container). The
sandbox may read and execute the Python installation and ``/usr``, read and
write only its workspace and private temp directory, use a few device files,
bind or connect no TCP port, and (ABI 6+) neither signal processes nor reach
abstract unix sockets outside its own Landlock domain.
"""

from __future__ import annotations

import ctypes
import os

from . import _libc

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ_ONLY = EXECUTE | READ_FILE | READ_DIR
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def handled_fs_access(abi: int) -> int:
    return _FS_BY_ABI[max(k for k in _FS_BY_ABI if k <= abi)]


def restrict(*, read_only: list[str], read_write: list[str]) -> int:
    """Apply the rules to the calling thread and its future children; returns the ABI used."""
    abi = _libc.landlock_abi_version()
    if abi < 1:
        raise OSError("Landlock is not available on this kernel")
    fs = handled_fs_access(abi)
    attr = _RulesetAttr(fs, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    # Older kernels reject a struct larger than they know: pass only what this ABI has.
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset_fd = _libc.landlock_create_ruleset(_Sized(attr, size))
    try:
        for path in read_only:
            _allow(ruleset_fd, path, READ_ONLY & fs)
        for path in DEVICES:
            _allow(ruleset_fd, path, (READ_FILE | WRITE_FILE | IOCTL_DEV) & fs)
        for path in read_write:
            _allow(ruleset_fd, path, fs)
        _libc.landlock_restrict_self(ruleset_fd)
    finally:
        os.close(ruleset_fd)
    return abi


def _allow(ruleset_fd: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            access &= READ_FILE | WRITE_FILE | EXECUTE | TRUNCATE | IOCTL_DEV
        _libc.landlock_add_path_rule(ruleset_fd, _PathBeneathAttr(access, fd))
    finally:
        os.close(fd)


def _Sized(attr: _RulesetAttr, size: int) -> ctypes.Structure:
    """A view of the first ``size`` bytes of ``attr`` as its own structure."""
    class Prefix(ctypes.Structure):
        _fields_ = _RulesetAttr._fields_[: size // 8]

    return Prefix.from_buffer_copy(bytes(attr)[:size])
