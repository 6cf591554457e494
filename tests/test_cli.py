"""The command line, run as a user would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nonroot
import pytest

SANDLOT = [sys.executable, "-m", "sandlot.cli"]


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SANDLOT, *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_doctor_reports_full_isolation_here() -> None:
    done = run_cli("doctor")
    assert done.returncode == 0, done.stderr
    assert "isolation: full" in done.stdout


def test_run_prints_like_python_and_exits_with_the_status() -> None:
    done = run_cli("run", "-", stdin="import sys\nprint('out')\nprint('err', file=sys.stderr)\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")
    failed = run_cli("run", "-", stdin="raise ValueError('nope')")
    assert failed.returncode == 1 and "ValueError: nope" in failed.stderr
    slow = run_cli("run", "--timeout", "0.5", "-", stdin="import time\ntime.sleep(10)")
    assert slow.returncode == 124


def test_run_json_gives_the_full_result() -> None:
    done = run_cli("run", "--json", "-", stdin="1 + 1")
    result = json.loads(done.stdout)
    assert result["status"] == "ok"
    assert result["outputs"][0]["data"]["text/plain"] == "2"


def test_errors_are_one_line_not_a_traceback() -> None:
    done = run_cli("run", "/nonexistent/file.py")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_run_against_a_server(server_url: str) -> None:
    done = run_cli("run", "--url", server_url, "-", stdin="print('remote')\n6 * 7")
    assert (done.returncode, done.stdout) == (0, "remote\n42\n"), done.stderr
    failed = run_cli("run", "--url", server_url, "-", stdin="1/0")
    assert failed.returncode == 1 and "ZeroDivisionError" in failed.stderr


def test_run_shell_runs_a_command_or_a_script(server_url: str, tmp_path: Path) -> None:
    done = run_cli("run", "--shell", "echo hi && echo err >&2 && exit 3")
    assert (done.returncode, done.stdout, done.stderr) == (3, "hi\n", "err\n")
    script = tmp_path / "script.sh"
    script.write_text("cd /workspace\necho from-script; pwd\n")
    remote = run_cli("run", "--shell", "--url", server_url, str(script))
    assert (remote.returncode, remote.stdout) == (0, "from-script\n/workspace\n"), remote.stderr
    slow = run_cli("run", "--shell", "--timeout", "0.5", "--url", server_url, "sleep 10")
    assert slow.returncode == 124
    as_json = json.loads(run_cli("run", "--shell", "--json", "-", stdin="echo piped").stdout)
    assert as_json["status"] == "ok" and as_json["stdout"] == "piped\n"


def test_run_against_an_unreachable_server_is_one_line() -> None:
    done = run_cli("run", "--url", "http://127.0.0.1:9", "-", stdin="print(1)")
    assert done.returncode == 6
    assert done.stderr.count("\n") == 1 and "could not reach" in done.stderr


@pytest.mark.parametrize(("code", "exit_code", "stderr"), [
    ("raise SystemExit(0)", 0, ""),
    ("import sys\nprint('bye')\nsys.exit()", 0, ""),
    ("import sys\nsys.exit(3)", 3, ""),
    ("import sys\nsys.exit('it broke')", 1, "it broke\n"),
], ids=["SystemExit(0)", "exit()", "exit(3)", "exit(message)"])
def test_run_exits_like_python_on_system_exit(code: str, exit_code: int, stderr: str) -> None:
    done = run_cli("run", "-", stdin=code)
    assert (done.returncode, done.stderr) == (exit_code, stderr)


def test_run_notes_a_truncated_output_on_stderr() -> None:
    done = run_cli("run", "-", stdin="print('x' * (3 << 20))")
    assert done.returncode == 0
    assert len(done.stdout) <= 1 << 20 and done.stdout.startswith("xxx")
    assert done.stderr == "[sandlot] the output was over the limit; the rest was dropped\n"


def test_serve_that_cannot_start_says_why_in_one_line(tmp_path: Path) -> None:
    # As a user who is not root there are no namespaces for sandboxes, so strict isolation cannot be had.
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root to create and become the unprivileged test user")
    with nonroot.test_user() as (uid, gid):
        home = nonroot.private_dir(uid, gid, "sandlot-cli-home-")
        try:
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
                   **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {})}
            process = nonroot.popen_as_user([*SANDLOT, "serve", "--port", "0", "--isolation", "strict", "--preload", ""],
                                            uid, gid, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            stdin=subprocess.DEVNULL)
            out, err = process.communicate(timeout=120)
        finally:
            shutil.rmtree(home, ignore_errors=True)
    text = (out + err).decode()
    assert process.returncode == 3, text
    assert text.count("\n") == 1 and text.startswith("sandlot: isolation 'strict' needs namespaces"), text
    assert "serving on" not in text and "Traceback" not in text
