"""The seccomp program is compiled as a binary tree (cheaper to attach and to run): it must decide every system call
exactly as the plain chain of the same rules does.

A small classic-BPF interpreter (the instructions libseccomp emits) runs both programs on every syscall number of
this architecture and a foreign one, with the argument values each conditional rule looks at, and both halves of
a 64-bit argument. The hostile tests (``test_hostile.py``) show what the policy stops; this one shows the faster
program is the same policy.
"""

from __future__ import annotations

import itertools
import platform
import struct

import pytest

from sandlot.engine import seccomp

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_BIT = 0x40000000
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_THREAD = 0x00020000, 0x10000000, 0x40000000, 0x00010000
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET = 1, 2, 10, 16, 17
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_NONBLOCK = 1, 2, 3, 0o4000
SECCOMP_RET_ALLOW = 0x7FFF0000

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="the syscall numbers here are x86_64's")


def run_bpf(program: bytes, data: bytes) -> int:
    """The verdict of a classic BPF ``program`` on ``data`` (a struct seccomp_data)."""
    instructions = [struct.unpack_from("<HBBI", program, i) for i in range(0, len(program), 8)]
    accumulator = pc = 0
    for _ in range(len(instructions) + 1):  # classic BPF only jumps forward
        code, jump_true, jump_false, k = instructions[pc]
        pc += 1
        if code == 0x20:  # BPF_LD | BPF_W | BPF_ABS
            accumulator = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:  # BPF_ALU | BPF_AND | BPF_K
            accumulator &= k
        elif code == 0x05:  # BPF_JMP | BPF_JA
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):  # BPF_JMP | JEQ, JGT, JGE, JSET with K
            taken = {0x15: accumulator == k, 0x25: accumulator > k, 0x35: accumulator >= k,
                     0x45: bool(accumulator & k)}[code]
            pc += jump_true if taken else jump_false
        elif code == 0x06:  # BPF_RET | BPF_K
            return k
        else:
            raise AssertionError(f"an instruction this interpreter does not know: {code:#x}")
    raise AssertionError("the program did not return")


def seccomp_data(nr: int, arch: int, args: tuple[int, ...]) -> bytes:
    return struct.pack("<iIQ6Q", nr, arch, 0, *(args + (0,) * (6 - len(args))))


ARGUMENT_CASES = [
    (), (0,), (1,), (2,),
    *((flags,) for flags in (CLONE_THREAD, CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWUSER | CLONE_THREAD,
                             0x80, 1 << 32, (1 << 32) | CLONE_NEWUSER)),
    *itertools.product((AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, (1 << 32) | AF_UNIX),
                       (SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM | SOCK_NONBLOCK, (1 << 32) | SOCK_STREAM),
                       (0, 6, 17, 1 << 32)),
    *((value,) for value in (0xFFFFFFFF, 8, 0x0008_0000, (1 << 32) | 0)),  # personality
    *((option,) for option in (1, 15, 22, 38, (1 << 32) | 1)),  # prctl: PR_SET_PDEATHSIG and others
]
CONDITIONAL = {41, 53, 56, 135, 157}
"""x86_64's socket, socketpair, clone, personality and prctl: the calls whose rules read arguments. Every other
call is checked with a few argument vectors (no rule reads them, so neither program may)."""
OTHER_ARGUMENTS = [(), (1, 2, 3), ((1 << 32) | 1, 0xFFFFFFFF, 1 << 63)]


@pytest.mark.parametrize("network", [False, True])
@pytest.mark.parametrize("allow_process_groups", [False, True])
def test_the_binary_tree_decides_every_call_as_the_chain_does(network: bool, allow_process_groups: bool) -> None:
    tree = seccomp.build_program(allow_process_groups=allow_process_groups, network=network)
    chain = seccomp.build_program(allow_process_groups=allow_process_groups, network=network, optimize=1)
    assert tree != chain  # really compiled differently
    verdicts: set[int] = set()
    checked = 0
    for nr in [*range(0, 512), *(X32_BIT | n for n in range(0, 64)), -1, 0x7FFFFFFF]:
        for arch in (AUDIT_ARCH_X86_64, AUDIT_ARCH_I386):
            for args in ARGUMENT_CASES if arch == AUDIT_ARCH_X86_64 and nr in CONDITIONAL else OTHER_ARGUMENTS:
                data = seccomp_data(nr, arch, args)
                verdict = run_bpf(tree, data)
                assert verdict == run_bpf(chain, data), (nr, hex(arch), args)
                verdicts.add(verdict)
                checked += 1
    assert checked > 4_000
    assert SECCOMP_RET_ALLOW in verdicts and len(verdicts) >= 3  # allowed, EPERM, ENOSYS (clone3), kill (arch)


def test_the_interpreter_reads_the_policy_as_the_docstring_says() -> None:
    """The interpreter itself, against facts of the policy: a test that cannot fail would compare nothing."""
    program = seccomp.build_program(allow_process_groups=True)
    getpid, ptrace, clone, socket = 39, 101, 56, 41
    assert run_bpf(program, seccomp_data(getpid, AUDIT_ARCH_X86_64, ())) == SECCOMP_RET_ALLOW
    assert run_bpf(program, seccomp_data(ptrace, AUDIT_ARCH_X86_64, ())) != SECCOMP_RET_ALLOW
    assert run_bpf(program, seccomp_data(clone, AUDIT_ARCH_X86_64, (CLONE_THREAD,))) == SECCOMP_RET_ALLOW
    assert run_bpf(program, seccomp_data(clone, AUDIT_ARCH_X86_64, (CLONE_NEWUSER,))) != SECCOMP_RET_ALLOW
    assert run_bpf(program, seccomp_data(socket, AUDIT_ARCH_X86_64, (AF_UNIX, SOCK_STREAM))) == SECCOMP_RET_ALLOW
    assert run_bpf(program, seccomp_data(socket, AUDIT_ARCH_X86_64, (AF_INET, SOCK_STREAM))) != SECCOMP_RET_ALLOW
    assert run_bpf(program, seccomp_data(getpid, AUDIT_ARCH_I386, ())) == 0x80000000  # another arch: killed
