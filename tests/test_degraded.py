"""Degraded mode (Landlock + seccomp + rlimits), forced on this host.

Where namespaces are missing (an unprivileged container), ``isolation="auto"``
falls back to this mode. Here it is forced with ``isolation="landlock"``, so
the same hostile snippets can be checked against it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from sandlot import EngineConfig, Limits, Sandlot
from sandlot._config import MiB
from sandlot_runtime import _libc

pytestmark = pytest.mark.skipif(_libc.landlock_abi_version() < 1, reason="no Landlock on this kernel")


@pytest.fixture(scope="module")
def degraded() -> Iterator[Sandlot]:
    limits = Limits(timeout=10, memory=256 * MiB, pids=32, workspace_size=16 * MiB)
    with Sandlot(EngineConfig(isolation="landlock", preload=(), pool_size=1, limits=limits)) as engine:
        assert engine.engine.isolation == "landlock"
        yield engine


def outcome(sl: Sandlot, code: str) -> object:
    result = sl.execute(code)
    assert result.status == "ok", (result.stderr, result.error)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_runs_code(degraded: Sandlot) -> None:
    result = degraded.execute("print(6 * 7)")
    assert result.status == "ok" and result.stdout == "42\n"


@pytest.mark.parametrize("path", ["/usr/evil", "/etc/evil", "/tmp/evil-from-sandbox", "/root/evil"])
def test_no_write_outside_the_workspace(degraded: Sandlot, path: str) -> None:
    code = f"import json\ntry:\n    open({path!r}, 'w').write('x')\n    print(json.dumps('written'))\n" \
           "except OSError as e:\n    print(json.dumps(type(e).__name__))"
    assert outcome(degraded, code) in ("PermissionError", "FileNotFoundError")
    assert not os.path.exists(path)


def test_no_read_of_host_files(degraded: Sandlot) -> None:
    probe = "/tmp/sandlot-degraded-host-file"
    with open(probe, "w") as f:
        f.write("host")
    try:
        code = f"import json\ntry:\n    print(json.dumps(open({probe!r}).read()))\nexcept OSError as e:\n" \
               "    print(json.dumps(type(e).__name__))"
        assert outcome(degraded, code) == "PermissionError"
    finally:
        os.unlink(probe)


def test_no_network_socket(degraded: Sandlot) -> None:
    code = "import socket, json\ntry:\n    socket.socket()\n    print(json.dumps('created'))\nexcept OSError as e:\n" \
           "    print(json.dumps(e.errno))"
    assert outcome(degraded, code) == 1


def test_cannot_signal_the_host(degraded: Sandlot) -> None:
    code = f"import os, json\ntry:\n    os.kill({os.getpid()}, 0)\n    print(json.dumps('reachable'))\n" \
           "except OSError as e:\n    print(json.dumps(type(e).__name__))"
    assert outcome(degraded, code) == "PermissionError"


def test_cannot_leave_its_process_group(degraded: Sandlot) -> None:
    code = "import os, json\ntry:\n    os.setsid()\n    print(json.dumps('left'))\nexcept OSError as e:\n" \
           "    print(json.dumps(e.errno))"
    assert outcome(degraded, code) == 1


def test_timeout_kills_the_whole_group(degraded: Sandlot) -> None:
    code = "import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        time.sleep(60)\n        os._exit(0)\ntime.sleep(60)"
    result = degraded.execute(code, timeout=1)
    assert result.status == "timeout"
    # The suite's leak check (no sandlot process may be left) covers the children.


def test_shell_commands_work_and_stay_confined(degraded: Sandlot) -> None:
    done = degraded.run_command("echo hi && ls && pwd")
    assert done.status == "ok" and done.stdout.startswith("hi\n"), (done.stdout, done.stderr, done.error)
    for path in ("/usr/evil", "/etc/evil", "/tmp/evil-from-sandbox-shell", "/root/evil"):
        written = degraded.run_command(f"echo x > {path}")
        assert written.status == "error" and written.exit_code != 0
        assert not os.path.exists(path)
    probe = "/tmp/sandlot-degraded-host-file-shell"
    with open(probe, "w") as f:
        f.write("host")
    try:
        assert degraded.run_command(f"cat {probe}").status == "error"
    finally:
        os.unlink(probe)
    assert degraded.run_command("curl -sS --max-time 3 http://127.0.0.1:1/").status == "error"
    with degraded.session() as session:
        assert session.run_command("echo data > f.txt").status == "ok"
        assert session.execute("print(open('f.txt').read())").stdout == "data\n\n"
        timed = session.run_command("sleep 30 & sleep 30", timeout=1)
        assert timed.status == "timeout"
        assert session.run_command("echo fine").stdout == "fine\n"


def test_a_shell_fork_bomb_is_contained(degraded: Sandlot) -> None:
    bomb = degraded.run_command(":(){ :|:& };:", timeout=2)
    assert bomb.status in ("timeout", "error", "killed")
    assert degraded.run_command("echo fine").stdout == "fine\n"
