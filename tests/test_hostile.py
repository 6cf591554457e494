"""Black-box escape tests: a hostile snippet, and the outcome it must have.

Every case runs twice: in ordinary sandboxes, and in sandboxes with network (egress on, each run and session
asking for it: the seccomp program that allows TCP sockets, the proxy listening in the sandbox's namespace).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import HOST_SECRET, TIGHT_LIMITS

import sandlot
from sandlot import EngineConfig, Sandlot
from sandlot.egress import EgressSettings
from sandlot.engine.blocking import SyncSession
from sandlot.testing.origin import Origin

WITH_NETWORK = "with network"


class NetworkedSandlot(Sandlot):
    """Every run and session asks for the network the operator allows."""

    def execute(self, code: str, **kwargs: Any) -> Any:
        kwargs.setdefault("network", list(self.engine.config.egress.allow))
        return super().execute(code, **kwargs)

    def session(self, **kwargs: Any) -> SyncSession:
        kwargs.setdefault("network", list(self.engine.config.egress.allow))
        return super().session(**kwargs)


@pytest.fixture(scope="module", params=["without network", WITH_NETWORK])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as served:
        yield served


@pytest.fixture(scope="module")
def sl(mode: str, origin: Origin, sl: Sandlot) -> Iterator[Sandlot]:
    if mode != WITH_NETWORK:
        yield sl  # conftest's: the default configuration
        return
    with NetworkedSandlot(EngineConfig(egress=EgressSettings(allow=(f"127.0.0.1:{origin.port}",)))) as engine:
        yield engine


@pytest.fixture(scope="module")
def tight(mode: str, origin: Origin, tight: Sandlot) -> Iterator[Sandlot]:
    if mode != WITH_NETWORK:
        yield tight
        return
    config = EngineConfig(preload=(), limits=TIGHT_LIMITS, pool_size=2,
                          egress=EgressSettings(allow=(f"127.0.0.1:{origin.port}",)))
    with NetworkedSandlot(config) as engine:
        yield engine


def run_json(sl: Sandlot, code: str) -> object:
    """Run code that prints one JSON document on its last line; return it."""
    result = sl.execute(code)
    assert result.status == "ok", (result.stderr, result.error)
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---- network ----------------------------------------------------------------

SOCKETS = {
    "tcp": "socket.AF_INET, socket.SOCK_STREAM",
    "udp": "socket.AF_INET, socket.SOCK_DGRAM",
    "tcp6": "socket.AF_INET6, socket.SOCK_STREAM",
    "raw": "socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP",
    "packet": "socket.AF_PACKET, socket.SOCK_RAW",
    "netlink": "socket.AF_NETLINK, socket.SOCK_RAW, 0",
}


@pytest.mark.parametrize("kind", sorted(SOCKETS))
def test_no_network_socket(sl: Sandlot, kind: str, mode: str, origin: Origin) -> None:
    code = f"import socket, errno, json\ntry:\n    socket.socket({SOCKETS[kind]})\n    print(json.dumps('created'))\n" \
           "except OSError as e:\n    print(json.dumps(errno.errorcode[e.errno]))"
    if mode == WITH_NETWORK and kind in ("tcp", "tcp6"):
        # TCP sockets exist with network, and reach only the sandbox's own loopback (where the proxy listens):
        # not the host's, where the origin server is.
        code = f"import socket, errno, json\ns = socket.socket({SOCKETS[kind]})\ntry:\n" \
               f"    s.connect(('127.0.0.1' if s.family == socket.AF_INET else '::1', {origin.port}))\n" \
               "    print(json.dumps('connected'))\nexcept OSError as e:\n    print(json.dumps(errno.errorcode[e.errno]))"
        assert run_json(sl, code) in ("ECONNREFUSED", "EADDRNOTAVAIL", "ENETUNREACH")
        return
    assert run_json(sl, code) == "EPERM"


def test_unix_sockets_still_work(sl: Sandlot) -> None:
    assert run_json(sl, "import socket, json\na, b = socket.socketpair()\na.send(b'x')\nprint(json.dumps(b.recv(1).decode()))") == "x"


def test_only_loopback_exists(sl: Sandlot) -> None:
    code = "import json\nlines = open('/proc/net/dev').read().splitlines()[2:]\n" \
           "print(json.dumps([line.split(':')[0].strip() for line in lines]))"
    assert run_json(sl, code) == ["lo"]


# ---- processes --------------------------------------------------------------

def test_no_host_process_is_visible(sl: Sandlot) -> None:
    pids = run_json(sl, "import os, json\nprint(json.dumps(sorted(int(p) for p in os.listdir('/proc') if p.isdigit())))")
    assert pids == [1]


def test_cannot_signal_the_host_or_another_sandbox(sl: Sandlot) -> None:
    with sl.session() as other:
        other_host_pid = other.session._sandbox.pid
        # pid 1 is excluded: inside the sandbox that number is the sandbox itself
        # (and when the suite runs in its own pid namespace, it is pytest outside).
        targets = [pid for pid in (os.getpid(), sl.engine.zygote_pid, other_host_pid) if pid != 1]
        code = ("import os, json, signal\nout = {}\n"
                f"for pid in {targets!r}:\n"
                "    try:\n        os.kill(pid, signal.SIGKILL)\n        out[pid] = 'sent'\n"
                "    except OSError as e:\n        out[pid] = type(e).__name__\n"
                "print(json.dumps(out))")
        outcome = run_json(sl, code)
        assert set(outcome.values()) == {"ProcessLookupError"}
        assert other.execute("'alive'").status == "ok"


PRCTL = "import ctypes, json\nlibc = ctypes.CDLL(None, use_errno=True)\n"


def test_the_sandbox_dies_with_its_zygote_after_the_uid_change(sl: Sandlot) -> None:
    # PR_GET_PDEATHSIG = 2: the kernel clears the setting on a uid change, so it must be set again after it.
    code = PRCTL + "value = ctypes.c_int(-1)\nlibc.prctl(2, ctypes.byref(value), 0, 0, 0)\nprint(json.dumps(value.value))"
    assert run_json(sl, code) == 9  # SIGKILL


def test_cannot_clear_the_parent_death_signal(sl: Sandlot) -> None:
    code = PRCTL + "rc = libc.prctl(1, 0, 0, 0, 0)\nprint(json.dumps([rc, ctypes.get_errno()]))"
    assert run_json(sl, code) == [-1, 1]  # EPERM from the seccomp policy
    other = PRCTL + "print(json.dumps(libc.prctl(16, ctypes.create_string_buffer(b'renamed'), 0, 0, 0)))"
    assert run_json(sl, other) == 0  # other prctl options still work (PR_SET_NAME)


def test_cannot_ptrace(sl: Sandlot) -> None:
    code = ("import ctypes, json\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "r = libc.ptrace(0, 0, None, None)\n"  # PTRACE_TRACEME
            "print(json.dumps([r, ctypes.get_errno()]))")
    assert run_json(sl, code) == [-1, 1]


# ---- file system ------------------------------------------------------------

@pytest.mark.parametrize("path", ["/usr/evil", "/etc/passwd", "/evil", "/proc/sys/kernel/hostname",
                                  os.path.realpath(os.__file__)])
def test_no_write_outside_the_workspace(sl: Sandlot, path: str) -> None:
    code = f"import json\ntry:\n    open({path!r}, 'a').write('x')\n    print(json.dumps('written'))\n" \
           "except OSError as e:\n    print(json.dumps(type(e).__name__))"
    assert run_json(sl, code) in ("OSError", "PermissionError", "FileNotFoundError")


def test_workspace_and_tmp_are_writable(sl: Sandlot) -> None:
    assert run_json(sl, "import json\nopen('/workspace/a', 'w').write('1')\nopen('/tmp/b', 'w').write('2')\n"
                        "print(json.dumps(open('a').read() + open('/tmp/b').read()))") == "12"


def test_host_files_are_not_there(sl: Sandlot, tmp_path: object) -> None:
    probe = "/tmp/sandlot-host-only-file"
    with open(probe, "w") as f:
        f.write("host")
    # /work is this machine's work area; a checkout or virtualenv under it is shown to the sandbox (read-only, the
    # interpreter's own files), and /work with it as a path component: then it is not a host directory to probe.
    hidden = ["/etc/shadow", "/root/.bashrc", "/run", "/sys", probe]
    if not any(path.startswith("/work/") for path in (sys.prefix, os.path.realpath(sandlot.__file__))):
        hidden.append("/work")
    try:
        code = (f"import os, json\npaths = {hidden + ['/etc/hostname']!r}\n"
                "print(json.dumps({p: os.path.exists(p) for p in paths}))")
        seen = run_json(sl, code)
        assert seen == {**{path: False for path in hidden}, "/etc/hostname": True}
    finally:
        os.unlink(probe)


def test_no_host_secret_in_environment(sl: Sandlot) -> None:
    code = ("import os, json\nfound = any('sandlot-host-secret' in v for v in os.environ.values())\n"
            "raw = open('/proc/self/environ', 'rb').read()\n"
            "print(json.dumps([found, b'sandlot-host-secret' in raw, sorted(os.environ)]))")
    in_env, in_proc, names = run_json(sl, code)
    assert not in_env and not in_proc
    assert "SANDLOT_TEST_HOST_SECRET" not in names
    assert HOST_SECRET not in str(names)


def test_cannot_read_another_sandboxes_workspace(sl: Sandlot) -> None:
    with sl.session() as victim:
        victim.execute("open('private.txt', 'w').write('victim data')")
        victim_host_path = victim.session.workspace.path
        code = ("import os, json\n"
                f"print(json.dumps([os.listdir('/workspace'), os.path.exists({victim_host_path!r})]))")
        listing, sees_host_path = run_json(sl, code)
        assert "private.txt" not in listing
        assert sees_host_path is False


def test_runs_as_an_unprivileged_uid_without_capabilities(sl: Sandlot) -> None:
    code = ("import os, json\nstatus = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() "
            "if ':\\t' in l)\nprint(json.dumps([os.getuid(), os.getgid(), os.getgroups(), status['CapEff'].strip(), "
            "status['CapBnd'].strip(), status['NoNewPrivs'].strip(), status['Seccomp'].strip()]))")
    uid, gid, groups, cap_eff, cap_bnd, nnp, seccomp = run_json(sl, code)
    assert uid >= 600_000 and gid == uid and groups == []
    assert cap_eff == "0000000000000000" and cap_bnd == "0000000000000000"
    assert nnp == "1" and seccomp == "2"


# ---- system calls -------------------------------------------------------------

DENIED_SYSCALLS = {
    # name: (number on x86_64, arguments)
    "ptrace": (101, (16, 1, 0, 0)),  # PTRACE_ATTACH to pid 1
    "mount": (165, (0, 0, 0, 0)),
    "umount2": (166, (0, 0)),
    "pivot_root": (155, (0, 0)),
    "chroot": (161, (0,)),
    "unshare": (272, (0x10000000,)),  # CLONE_NEWUSER
    "setns": (308, (0, 0)),
    "bpf": (321, (0, 0, 0)),
    "perf_event_open": (298, (0, 0, -1, -1, 0)),
    "keyctl": (250, (0, 0)),
    "add_key": (248, (0, 0, 0, 0, 0)),
    "kexec_load": (246, (0, 0, 0, 0)),
    "init_module": (175, (0, 0, 0)),
    "finit_module": (313, (0, 0, 0)),
    "delete_module": (176, (0, 0)),
    "process_vm_readv": (310, (1, 0, 0, 0, 0, 0)),
    "process_vm_writev": (311, (1, 0, 0, 0, 0, 0)),
    "userfaultfd": (323, (0,)),
    "io_uring_setup": (425, (1, 0)),
    "open_tree": (428, (0, 0, 0)),
    "move_mount": (429, (0, 0, 0, 0, 0)),
    "fsopen": (430, (0, 0)),
    "fsmount": (432, (0, 0, 0)),
    "mount_setattr": (442, (0, 0, 0, 0, 0)),
    "clone_newuser": (56, (0x10000000 | 17, 0, 0, 0, 0)),  # clone(CLONE_NEWUSER|SIGCHLD)
    "clone_newnet": (56, (0x40000000 | 17, 0, 0, 0, 0)),
    "name_to_handle_at": (303, (0, 0, 0, 0, 0)),
    "open_by_handle_at": (304, (0, 0, 0)),
}


def test_denied_syscalls_return_eperm(sl: Sandlot) -> None:
    code = ("import ctypes, json\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n"
            f"calls = {DENIED_SYSCALLS!r}\nout = {{}}\n"
            "for name, (nr, args) in calls.items():\n"
            "    ctypes.set_errno(0)\n"
            "    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])\n"
            "    out[name] = [r, ctypes.get_errno()]\n"
            "print(json.dumps(out))")
    outcome = run_json(sl, code)
    assert outcome == {name: [-1, 1] for name in DENIED_SYSCALLS}


def test_clone3_says_enosys_so_libc_falls_back(sl: Sandlot) -> None:
    code = ("import ctypes, json\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "r = libc.syscall(435, None, 0)\nprint(json.dumps([r, ctypes.get_errno()]))")
    assert run_json(sl, code) == [-1, 38]


def test_threads_and_processes_still_work(sl: Sandlot) -> None:
    code = ("import json, threading, multiprocessing as mp\n"
            "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
            "with mp.get_context('fork').Pool(2) as pool:\n    squares = pool.map(abs, [-1, -2, -3])\n"
            "print(json.dumps(squares))")
    assert run_json(sl, code) == [1, 2, 3]


# ---- limits -------------------------------------------------------------------

def test_fork_bomb_is_stopped_by_the_pids_limit(tight: Sandlot) -> None:
    code = ("import os, time, json\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
            "            time.sleep(30)\n            os._exit(0)\n        n += 1\n"
            "except OSError as e:\n    print(json.dumps([n, e.errno]))")
    n, err = run_json(tight, code)
    assert n < 32 and err == 11  # EAGAIN
    assert tight.execute("print('fine')").stdout == "fine\n"


def test_runaway_fork_bomb_ends_and_the_host_is_fine(tight: Sandlot) -> None:
    result = tight.execute("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
                           timeout=2)
    assert result.status == "timeout"
    assert tight.execute("print('fine')").stdout == "fine\n"


def test_memory_bomb_ends_with_status_memory(tight: Sandlot) -> None:
    result = tight.execute("x = []\nwhile True:\n    x.append(b'x' * (8 << 20))")
    assert result.status == "memory"
    assert tight.execute("print('fine')").stdout == "fine\n"


def test_huge_allocation_ends_with_status_memory(tight: Sandlot) -> None:
    result = tight.execute("b = bytearray(1 << 40)")
    assert result.status == "memory"


def test_cpu_spin_ends_with_timeout(tight: Sandlot) -> None:
    result = tight.execute("while True:\n    pass", timeout=1)
    assert result.status == "timeout"


def test_cpu_time_limit_ends_with_timeout(tight: Sandlot) -> None:
    # cpu_time is 2 s with a 15 s wall clock: the CPU limit must be what stops it.
    result = tight.execute("while True:\n    pass")
    assert result.status == "timeout"
    assert result.duration_ms < 10_000
    assert result.usage.cpu_ms >= 1_000


def test_disk_fill_is_stopped(tight: Sandlot) -> None:
    code = ("import json, errno\nwritten = 0\ntry:\n    with open('fill', 'wb') as f:\n        while True:\n"
            "            f.write(b'x' * (1 << 20)); f.flush(); written += 1\n"
            "except OSError as e:\n    print(json.dumps([written, errno.errorcode[e.errno]]))")
    written, err = run_json(tight, code)
    assert written <= 16 and err in ("ENOSPC", "EFBIG")


def test_tmp_fill_is_stopped(tight: Sandlot) -> None:
    code = ("import json, errno, os\nn = 0\ntry:\n    while True:\n"
            "        open(f'/tmp/f{n}', 'wb').write(b'x' * (4 << 20)); n += 1\n"
            "except OSError as e:\n    print(json.dumps([n, errno.errorcode[e.errno]]))")
    n, err = run_json(tight, code)
    assert n <= 4 and err == "ENOSPC"


def test_output_flood_is_truncated(tight: Sandlot) -> None:
    # 2.8 MB against a 64 KiB limit, in a hundred writes: what is tested is the limit, not how fast this
    # machine runs print() (200,000 calls took 4.4 s of CPU on one VM, over the 2 s CPU limit).
    result = tight.execute("import sys\nfor i in range(100):\n    sys.stdout.write(f'flood line {i}\\n' * 2000)\n"
                           "print('done')")
    assert result.status == "ok"
    assert result.truncated is True
    assert 60 * 1024 <= len(result.stdout.encode()) <= 64 * 1024
    assert result.stdout.startswith("flood line 0\nflood line 0\n") and "done" not in result.stdout


def test_frame_forgery_kills_only_that_sandbox(sl: Sandlot) -> None:
    code = "import os\nos.write(3, b'\\x00\\x00\\x00\\x05{bad}')\nimport time\ntime.sleep(5)"
    result = sl.execute(code)
    assert result.status == "killed"
    assert "protocol" in result.stderr
    assert sl.execute("print('fine')").stdout == "fine\n"


def test_oversized_frame_kills_only_that_sandbox(tight: Sandlot) -> None:
    code = "import os\nos.write(3, (1 << 30).to_bytes(4, 'big'))\nimport time\ntime.sleep(5)"
    result = tight.execute(code)
    assert result.status == "killed"
    assert tight.execute("print('fine')").stdout == "fine\n"
