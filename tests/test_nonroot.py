"""`sandlot serve` started by a user who is not root: the degraded mode, black-box.

Without root there are no namespaces, cgroups or per-sandbox uids: sandboxes run
as the server's own user under Landlock, seccomp and rlimits (docs/architecture.md).
The server must still work, and the hostile cases that apply there must hold:
no writes or reads outside the workspace, no signals to the server, no network,
fork and memory bombs contained, and nothing left running after it stops.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import nonroot
import pytest

from sandlot.testing.serving import free_port
from sandlot_runtime import _libc

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create and become the unprivileged test user"),
    pytest.mark.skipif(_libc.landlock_abi_version() < 1, reason="no Landlock on this kernel"),
    pytest.mark.skipif(shutil.which("useradd") is None, reason="no useradd to create the test user"),
]


@dataclass
class NonRootServer:
    url: str
    process: subprocess.Popen[bytes]
    uid: int
    home: str
    log: str

    def run(self, code: str, **extra: object) -> dict[str, object]:
        response = httpx.post(self.url + "/v1/execute", json={"code": code, **extra}, timeout=60)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body


def processes_of(uid: int) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    with open(f"/proc/{entry}/stat") as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"{entry} ({state}): {cmdline[:100]}")
    return found


@pytest.fixture(scope="module")
def user() -> Iterator[tuple[int, int]]:
    with nonroot.test_user() as ids:
        yield ids


@pytest.fixture(scope="module")
def server(user: tuple[int, int]) -> Iterator[NonRootServer]:
    uid, gid = user
    home = nonroot.private_dir(uid, gid, "sandlot-nonroot-home-")
    port = free_port()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]  # the sandlot under test, not another one installed here
    log_path = os.path.join(home, "server.log")
    with open(log_path, "wb") as log:
        os.chown(log_path, uid, gid)
        process = nonroot.popen_as_user(
            [sys.executable, "-m", "sandlot.cli", "serve", "--port", str(port), "--pool-size", "2", "--preload", "",
             "--timeout", "10", "--memory", str(256 << 20), "--shutdown-grace", "2"],
            uid, gid, env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            assert process.poll() is None, open(log_path).read()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the non-root server did not become healthy:\n" + open(log_path).read()
            time.sleep(0.2)
        yield NonRootServer(url, process, uid, home, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(f"/tmp/sandlot-{uid}", ignore_errors=True)


def test_health_says_degraded_and_ready(server: NonRootServer) -> None:
    body = httpx.get(server.url + "/healthz").json()
    assert body["status"] == "ok" and body["isolation"] == "landlock"


def test_runs_code_as_the_servers_user(server: NonRootServer) -> None:
    result = server.run("import os; print(6 * 7, os.getuid())")
    assert result["status"] == "ok", result
    assert result["stdout"] == f"42 {server.uid}\n"


def test_sessions_and_files_work(server: NonRootServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        session = client.post("/v1/sessions", json={}).json()["id"]
        try:
            put = client.put(f"/v1/sessions/{session}/files/data/in.txt", content=b"hello",
                             headers={"content-type": "application/octet-stream"})
            assert put.status_code == 201, put.text
            first = client.post(f"/v1/sessions/{session}/execute",
                                json={"code": "text = open('data/in.txt').read()\nopen('out.txt', 'w').write(text * 2)"})
            assert first.json()["status"] == "ok", first.text
            second = client.post(f"/v1/sessions/{session}/execute", json={"code": "print(text)"}).json()
            assert second["stdout"] == "hello\n"
            assert client.get(f"/v1/sessions/{session}/files/out.txt").content == b"hellohello"
        finally:
            assert client.delete(f"/v1/sessions/{session}").status_code == 204


def outcome_of(server: NonRootServer, code: str) -> str:
    result = server.run(code)
    assert result["status"] == "ok", result
    return str(result["stdout"]).strip().splitlines()[-1]


def test_no_write_or_read_outside_the_workspace(server: NonRootServer) -> None:
    secret = os.path.join(server.home, "secret.txt")
    with open(secret, "w") as f:
        f.write("the user's own file")
    os.chown(secret, server.uid, server.uid)
    os.chmod(secret, 0o600)
    for path in (os.path.join(server.home, "planted"), "/tmp/sandlot-nonroot-planted"):
        code = f"try:\n    open({path!r}, 'w').write('x')\n    print('written')\nexcept OSError as e:\n    print(type(e).__name__)"
        assert outcome_of(server, code) == "PermissionError"
        assert not os.path.exists(path)
    code = f"try:\n    print(open({secret!r}).read())\nexcept OSError as e:\n    print(type(e).__name__)"
    assert outcome_of(server, code) == "PermissionError"


def test_cannot_signal_the_server(server: NonRootServer) -> None:
    code = (f"import os, signal\ntry:\n    os.kill({server.process.pid}, signal.SIGKILL)\n    print('sent')\n"
            "except OSError as e:\n    print(type(e).__name__)")
    assert outcome_of(server, code) in ("PermissionError", "ProcessLookupError")
    assert server.process.poll() is None


def test_no_network(server: NonRootServer) -> None:
    port = server.url.rsplit(":", 1)[1]
    code = ("import socket\ntry:\n    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
            f"    s.connect(('127.0.0.1', {port}))\n    print('connected')\nexcept OSError as e:\n    print(type(e).__name__)")
    assert outcome_of(server, code) in ("PermissionError", "OSError")


def test_fork_bomb_and_memory_bomb_are_contained(server: NonRootServer) -> None:
    before = len(processes_of(server.uid))
    bomb = ("import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            import time; time.sleep(30)\n"
            "        n += 1\nexcept OSError as e:\n    print('stopped after', n, type(e).__name__)")
    result = server.run(bomb)
    assert result["status"] == "ok" and "BlockingIOError" in str(result["stdout"]), result
    # Without a memory cgroup the memory limit is an address-space limit: the allocation fails at once.
    memory = server.run("x = bytearray(4 << 30)")
    assert memory["status"] == "memory" and memory["error"]["ename"] == "MemoryError", memory  # type: ignore[index]
    assert server.run("print('still here')")["stdout"] == "still here\n"
    # The bomb's children died with its sandbox's process group, and were reaped (no zombies either).
    deadline = time.monotonic() + 5
    while len(processes_of(server.uid)) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(processes_of(server.uid)) <= before, processes_of(server.uid)


def test_shell_commands_run_confined(server: NonRootServer) -> None:
    secret = os.path.join(server.home, "secret-for-shell.txt")
    with open(secret, "w") as f:
        f.write("the user's own file")
    os.chown(secret, server.uid, server.uid)
    os.chmod(secret, 0o600)
    port = server.url.rsplit(":", 1)[1]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        session = client.post("/v1/sessions", json={}).json()["id"]
        try:
            base = f"/v1/sessions/{session}/commands"
            done = client.post(base, json={"cmd": "echo hi > f.txt && id -u"}).json()
            assert done["status"] == "ok" and done["stdout"] == f"{server.uid}\n", done
            assert client.get(f"/v1/sessions/{session}/files/f.txt").content == b"hi\n"
            for cmd in (f"cat {secret}", f"echo x > {server.home}/planted-by-shell",
                        f"curl -sS --max-time 3 http://127.0.0.1:{port}/healthz"):
                refused = client.post(base, json={"cmd": cmd}).json()
                assert refused["status"] == "error" and "the user's own file" not in refused["stdout"], refused
            assert not os.path.exists(f"{server.home}/planted-by-shell")
            bomb = client.post(base, json={"cmd": ":(){ :|:& };:", "timeout": 3}).json()
            assert bomb["status"] in ("timeout", "error", "killed"), bomb
            assert client.post(base, json={"cmd": "echo fine"}).json()["stdout"] == "fine\n"
        finally:
            assert client.delete(f"/v1/sessions/{session}").status_code == 204


def test_stops_cleanly_and_leaves_nothing(server: NonRootServer) -> None:
    # Last in the module: a cell spinning at the stop, then SIGTERM.
    session = httpx.post(server.url + "/v1/sessions", json={}).json()["id"]
    spinning = subprocess.Popen([sys.executable, "-c", "import httpx, sys; httpx.post(sys.argv[1], json={'code': "
                                 "'while True: pass'}, timeout=30)", f"{server.url}/v1/sessions/{session}/execute"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0, open(server.log).read()
    spinning.wait(30)
    deadline = time.monotonic() + 2
    while processes_of(server.uid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_of(server.uid) == []
    state_dir = f"/tmp/sandlot-{server.uid}"
    assert not os.path.isdir(state_dir) or [n for n in os.listdir(state_dir) if n.startswith("sandlot-")] == []
