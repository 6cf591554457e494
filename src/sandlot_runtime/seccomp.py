"""Mechanism: the seccomp filter.

The host compiles the policy once into classic BPF (with libseccomp) and hands
the bytes to the zygote; loading it here is a single prctl. ``no_new_privs`` is
set first: the kernel requires it for unprivileged filters, and it also stops
setuid binaries from gaining anything.
"""

from __future__ import annotations

from . import _libc


def set_no_new_privs() -> None:
    _libc.prctl(_libc.PR_SET_NO_NEW_PRIVS, 1)


def load(bpf: bytes) -> None:
    _libc.load_seccomp_program(bpf)
