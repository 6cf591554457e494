"""Shell commands, black-box: a real server on a loopback port, a real client, docs/commands.md as the oracle.

One-shot and session commands (exit codes, stderr, cwd, env, stdin, timeouts, streaming, output
limits), background commands (list, tail, stdin, kill, beside a running cell), the files a
command writes as the files API and the next cell see them, and the hostile cases in shell form:
a fork bomb, walking /proc, writing outside the workspace, reading host secrets, the network.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import HOST_SECRET, TIGHT_LIMITS, running_server
from test_server import assert_error, sse_events, wait_until

from sandlot import EngineConfig
from sandlot.server import ServerConfig

RESULT_KEYS = {"id", "cmd", "status", "exit_code", "stdout", "stderr", "duration_ms", "truncated"}


def assert_command(body: dict[str, Any], status: str = "ok", exit_code: int | None = 0) -> dict[str, Any]:
    assert RESULT_KEYS <= set(body), body
    assert body["id"].startswith("cmd_")
    assert body["status"] == status, body
    assert body["exit_code"] == exit_code, body
    assert body["duration_ms"] >= 0
    return body


@pytest.fixture
def client(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=60) as c:
        yield c


@pytest.fixture
def session(client: httpx.Client) -> Iterator[str]:
    created = client.post("/v1/sessions")
    assert created.status_code == 201, created.text
    yield created.json()["id"]
    client.delete(f"/v1/sessions/{created.json()['id']}")


@pytest.fixture(scope="module")
def tight_url() -> Iterator[str]:
    """Small limits (32 processes, 64 KiB of output), nothing preloaded."""
    with running_server(ServerConfig(engine=EngineConfig(preload=(), pool_size=1, limits=TIGHT_LIMITS))) as url:
        yield url


@pytest.fixture
def tight(tight_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tight_url, timeout=60) as c:
        yield c


def run(client: httpx.Client, session: str | None, **body: Any) -> dict[str, Any]:
    path = f"/v1/sessions/{session}/commands" if session else "/v1/commands"
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# ---- one-shot and foreground --------------------------------------------------------

def test_one_shot_echo_and_ls(client: httpx.Client) -> None:
    files = [{"path": "a.txt", "content": base64.b64encode(b"1").decode()}]
    body = assert_command(run(client, None, cmd="echo hi && ls", files=files))
    assert body["stdout"] == "hi\na.txt\n" and body["stderr"] == "" and body["truncated"] is False


def test_a_non_zero_exit_is_data_with_its_stderr(client: httpx.Client, session: str) -> None:
    for where in (None, session):
        body = assert_command(run(client, where, cmd="echo out; echo oops >&2; exit 3"), "error", 3)
        assert body["stdout"] == "out\n" and body["stderr"] == "oops\n"
    assert_command(run(client, session, cmd="false"), "error", 1)
    assert_command(run(client, session, cmd="no-such-program-here"), "error", 127)


def test_cwd_env_and_stdin(client: httpx.Client, session: str) -> None:
    assert_command(run(client, session, cmd="mkdir -p sub/dir"))
    body = assert_command(run(client, session, cmd="pwd; echo $GREETING; cat", cwd="sub/dir",
                              env={"GREETING": "hello"}, stdin="from stdin\n"))
    lines = body["stdout"].splitlines()
    assert lines[0].endswith("/sub/dir") and lines[1:] == ["hello", "from stdin"]
    assert assert_command(run(client, session, cmd="cat"))["stdout"] == ""  # no stdin: end of file at once


@pytest.mark.parametrize("cwd", ["..", "../x", "/etc", "a/../../b"])
def test_a_cwd_that_leaves_the_workspace_is_refused(client: httpx.Client, session: str, cwd: str) -> None:
    assert_error(client.post(f"/v1/sessions/{session}/commands", json={"cmd": "pwd", "cwd": cwd}), 400,
                 "invalid_request")
    assert_error(client.post("/v1/commands", json={"cmd": "pwd", "cwd": cwd}), 400, "invalid_request")


def test_a_missing_cwd_is_an_error_result(client: httpx.Client, session: str) -> None:
    body = assert_command(run(client, session, cmd="pwd", cwd="not-there"), "error", None)
    assert "could not be started" in body["error"]


@pytest.mark.parametrize("payload", [{}, {"cmd": ""}, {"cmd": 5}, {"cmd": "ls", "timeout": -1},
                                     {"cmd": "ls", "cwdd": "x"}, {"cmd": "ls", "env": {"A=B": "c"}}])
def test_bad_requests_are_400(client: httpx.Client, payload: dict[str, Any]) -> None:
    assert_error(client.post("/v1/commands", json=payload), 400, "invalid_request")


def test_a_command_over_its_timeout_is_killed(client: httpx.Client, session: str) -> None:
    for where in (None, session):
        started = time.monotonic()
        body = assert_command(run(client, where, cmd="echo before; sleep 30 & sleep 30", timeout=1), "timeout", None)
        assert time.monotonic() - started < 10
        assert body["stdout"] == "before\n"
    # the session and its sandbox are fine, and nothing of the command is left running there
    assert_command(run(client, session, cmd="echo fine"))
    procs = assert_command(run(client, session, cmd="ps -e -o comm="))["stdout"].split()
    assert "sleep" not in procs


def test_commands_stream_like_execute(client: httpx.Client, session: str) -> None:
    for path in ("/v1/commands", f"/v1/sessions/{session}/commands"):
        with client.stream("POST", path, json={"cmd": "echo one; sleep 0.2; echo two >&2", "stream": True}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            events = list(sse_events(r))
        names = [name for name, _ in events]
        assert names[-1] == "done" and "stdout" in names and "stderr" in names
        assert {"name": "stdout", "text": "one\n"} in [data for name, data in events if name == "stdout"]
        assert assert_command(events[-1][1])["stderr"] == "two\n"


def test_output_over_the_limit_is_truncated(tight: httpx.Client) -> None:
    body = assert_command(run(tight, None, cmd="head -c 1000000 /dev/zero | tr '\\0' x"))
    assert body["truncated"] is True and len(body["stdout"]) == TIGHT_LIMITS.output_size


# ---- sessions: files and cells ----------------------------------------------------

def test_files_a_command_writes_are_the_sessions_files(client: httpx.Client, session: str) -> None:
    assert_command(run(client, session, cmd="echo from-shell > shell.txt"))
    assert client.get(f"/v1/sessions/{session}/files/shell.txt").content == b"from-shell\n"
    assert "shell.txt" in [f["path"] for f in client.get(f"/v1/sessions/{session}/files").json()["files"]]
    cell = client.post(f"/v1/sessions/{session}/execute",
                       json={"code": "print(open('shell.txt').read().strip())\nopen('py.txt', 'w').write('from-py')"})
    assert cell.json()["stdout"] == "from-shell\n"
    assert assert_command(run(client, session, cmd="cat py.txt"))["stdout"] == "from-py"


def test_a_command_before_any_cell_and_the_session_env(client: httpx.Client) -> None:
    created = client.post("/v1/sessions", json={"env": {"SESSION_VAR": "s1"}}).json()["id"]
    try:
        assert assert_command(run(client, created, cmd="echo $SESSION_VAR"))["stdout"] == "s1\n"
        assert client.post(f"/v1/sessions/{created}/execute", json={"code": "x = 41"}).json()["status"] == "ok"
        assert client.post(f"/v1/sessions/{created}/execute", json={"code": "x + 1"}).json()["outputs"][0]["data"] \
            == {"text/plain": "42"}
    finally:
        client.delete(f"/v1/sessions/{created}")


# ---- background -----------------------------------------------------------------------

def test_background_commands_list_tail_stdin_and_kill(client: httpx.Client, session: str) -> None:
    base = f"/v1/sessions/{session}/commands"
    started = client.post(base, json={"cmd": "echo ready; while read l; do echo got $l; done", "background": True})
    assert started.status_code == 201, started.text
    cid = started.json()["id"]
    assert cid.startswith("cmd_")
    assert wait_until(lambda: client.get(f"{base}/{cid}").json()["stdout"] == "ready\n", 10)
    assert client.post(f"{base}/{cid}/stdin", json={"data": "one\n"}).status_code == 204
    # stdin reaches it while a cell runs in the same session
    cell = threading.Thread(target=lambda: client.post(f"/v1/sessions/{session}/execute",
                                                       json={"code": "import time; time.sleep(1.5)"}))
    cell.start()
    time.sleep(0.3)
    with httpx.Client(base_url=str(client.base_url), timeout=30) as other:
        assert other.post(f"{base}/{cid}/stdin", json={"data": "two\n"}).status_code == 204
        assert wait_until(lambda: "got two" in other.get(f"{base}/{cid}").json()["stdout"], 1.0)
    cell.join()
    state = client.get(f"{base}/{cid}").json()
    assert state["status"] == "running" and state["background"] is True and state["exit_code"] is None
    assert state["stdout"] == "ready\ngot one\ngot two\n"
    assert cid in [c["id"] for c in client.get(base).json()["commands"]]
    killed = client.delete(f"{base}/{cid}")
    assert killed.status_code == 200 and killed.json()["status"] == "killed"
    assert client.get(f"{base}/{cid}").json()["status"] == "killed"
    assert_error(client.post(f"{base}/{cid}/stdin", json={"data": "x"}), 400, "invalid_request")
    assert_error(client.get(f"{base}/cmd_nope"), 404, "not_found")


def test_a_command_sent_while_the_pids_limit_is_reached_waits_for_a_slot(tight: httpx.Client) -> None:
    """A fork bomb just killed still holds the pids limit until its processes are reaped: the next command waits
    for a process slot (START_RETRY) instead of failing, and the sandbox (its interpreter's state) lives on. Found
    by the E2B fork-bomb test under load: the runtime died when it could not start the command's thread."""
    session = tight.post("/v1/sessions").json()["id"]
    base = f"/v1/sessions/{session}/commands"
    try:
        assert tight.post(f"/v1/sessions/{session}/execute", json={"code": "kept = 7"}).json()["status"] == "ok"
        # Children that hold every process slot for 1.5 s (sh would give up at its first failed fork).
        filler = ("python3 -c 'import os, time\nwhile True:\n    try:\n        pid = os.fork()\n    except OSError:\n"
                  "        break\n    if pid == 0:\n        time.sleep(1.5); os._exit(0)\nprint(\"full\", flush=True)\n"
                  "while True:\n    try:\n        os.wait()\n    except ChildProcessError:\n        break'")
        cid = tight.post(base, json={"cmd": filler, "background": True}).json()["id"]
        assert wait_until(lambda: "full" in tight.get(f"{base}/{cid}").json()["stdout"], 10)
        alive = run(tight, session, cmd="echo alive")  # sent while every one of the 32 process slots is taken
        assert assert_command(alive)["stdout"] == "alive\n"
        cell = tight.post(f"/v1/sessions/{session}/execute", json={"code": "print(kept)"}).json()
        assert (cell["stdout"], cell["restarted"]) == ("7\n", False), cell
    finally:
        tight.delete(f"/v1/sessions/{session}")


def test_a_background_command_ends_on_its_own_and_with_eof(client: httpx.Client, session: str) -> None:
    base = f"/v1/sessions/{session}/commands"
    cid = client.post(base, json={"cmd": "wc -l", "background": True}).json()["id"]
    client.post(f"{base}/{cid}/stdin", json={"data": "a\nb\n", "eof": True})
    assert wait_until(lambda: client.get(f"{base}/{cid}").json()["status"] == "ok", 10)
    assert client.get(f"{base}/{cid}").json()["stdout"].strip() == "2"
    timed = client.post(base, json={"cmd": "sleep 30", "background": True, "timeout": 0.5}).json()["id"]
    assert wait_until(lambda: client.get(f"{base}/{timed}").json()["status"] == "timeout", 10)


def test_a_background_command_keeps_its_latest_output(tight: httpx.Client) -> None:
    created = tight.post("/v1/sessions").json()["id"]
    try:
        base = f"/v1/sessions/{created}/commands"
        cid = tight.post(base, json={"cmd": "seq 1 100000; echo last-line", "background": True}).json()["id"]
        assert wait_until(lambda: tight.get(f"{base}/{cid}").json()["status"] == "ok", 20)
        state = tight.get(f"{base}/{cid}").json()
        assert state["truncated"] is True and state["stdout"].endswith("100000\nlast-line\n")
        assert len(state["stdout"]) <= TIGHT_LIMITS.output_size
    finally:
        tight.delete(f"/v1/sessions/{created}")


def test_pausing_ends_background_commands(client: httpx.Client, session: str) -> None:
    base = f"/v1/sessions/{session}/commands"
    cid = client.post(base, json={"cmd": "sleep 60", "background": True}).json()["id"]
    assert client.post(f"/v1/sessions/{session}/pause").status_code == 200
    assert client.get(f"{base}/{cid}").json()["status"] == "killed"
    assert_command(run(client, session, cmd="echo resumed"))


# ---- hostile, in shell form -------------------------------------------------------------

def test_a_fork_bomb_from_sh_is_contained(tight: httpx.Client) -> None:
    created = tight.post("/v1/sessions").json()["id"]
    try:
        body = run(tight, created, cmd=":(){ :|:& };:", timeout=3)
        assert body["status"] in ("timeout", "error", "killed"), body
        assert_command(run(tight, created, cmd="echo fine"))
        left = assert_command(run(tight, created, cmd="ls /proc | grep -c '^[0-9]'"))["stdout"]
        assert int(left) < 8  # the interpreter, this shell and its pipeline: the bomb is gone
        assert tight.post(f"/v1/sessions/{created}/execute", json={"code": "print('cell fine')"}).json()["stdout"] \
            == "cell fine\n"
    finally:
        tight.delete(f"/v1/sessions/{created}")
    assert run(tight, None, cmd=":(){ :|:& };:", timeout=2)["status"] in ("timeout", "error", "killed")
    assert_command(run(tight, None, cmd="echo host fine"))


def test_walking_proc_shows_only_the_sandbox(client: httpx.Client, session: str) -> None:
    body = assert_command(run(client, session, cmd="for p in /proc/[0-9]*; do cat $p/cmdline | tr '\\0' ' '; "
                                                  "echo; done; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'"))
    assert HOST_SECRET not in body["stdout"]
    assert "pytest" not in body["stdout"] and "uvicorn" not in body["stdout"]
    pids = assert_command(run(client, session, cmd="ls /proc | grep '^[0-9]*$' | sort -n"))["stdout"].split()
    assert os.getpid() not in [int(p) for p in pids] or max(int(p) for p in pids) < 20
    assert pids[0] == "1"


@pytest.mark.parametrize("path", ["/usr/evil", "/etc/passwd", "/evil", "/proc/sys/kernel/hostname", "/tmp/../bin/evil"])
def test_no_write_outside_the_workspace(client: httpx.Client, session: str, path: str) -> None:
    body = run(client, session, cmd=f"echo x >> {path}")
    assert body["status"] == "error" and body["exit_code"] != 0, body
    assert not os.path.exists("/evil") and not os.path.exists("/usr/evil")


def test_no_host_secret_and_no_privilege(client: httpx.Client) -> None:
    body = assert_command(run(client, None, cmd="env; id -u; grep -E '^Cap(Eff|Prm)' /proc/self/status; "
                                                "cat /etc/shadow 2>&1; ls /root/.bashrc /work /run 2>&1"), "error", 2)
    assert HOST_SECRET not in body["stdout"] and "SANDLOT_TEST_HOST_SECRET" not in body["stdout"]
    lines = body["stdout"]
    assert "\n0\n" not in lines  # not root
    assert "CapEff:\t0000000000000000" in lines and "CapPrm:\t0000000000000000" in lines
    assert "No such file" in lines


def test_no_network_from_the_shell(client: httpx.Client, server_url: str) -> None:
    port = urlsplit(server_url).port
    for cmd in (f"curl -sS --max-time 3 http://127.0.0.1:{port}/healthz", f"wget -q -t 1 -T 3 -O- http://127.0.0.1:{port}/healthz",
                "curl -sS --max-time 3 http://1.1.1.1/"):
        body = run(client, None, cmd=cmd)
        assert body["status"] == "error" and "ok" not in body["stdout"], body
    assert assert_command(run(client, None, cmd="cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '"))[
        "stdout"].split() == ["lo"]
