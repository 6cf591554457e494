"""The host running out, against a real server: each fault has a clear answer and a recovery.

A full state directory (a small tmpfs the test mounts and fills, bytes then inodes), every
sandbox uid in use, and the pids limit of the server's own cgroup: requests that need
what ran out get the contract's error body (503 ``resource_exhausted`` or 429 ``capacity``)
with ``Retry-After``, never a 500 or a hang; ``/healthz`` says what ran out; once it is
back, runs are served again without a restart.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import running_server
from test_server import wait_until

from sandlot import EngineConfig
from sandlot.engine.cgroups import detect
from sandlot.server import ServerConfig
from sandlot.testing.serving import ServerProcess, free_port

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, uids, cgroups)")


def healthy(url: str) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(url + "/healthz", timeout=10).status_code == 200
    return False


def run_ok(url: str) -> bool:
    response = httpx.post(url + "/v1/execute", json={"code": "print('ok')"}, timeout=30)
    return response.status_code == 200 and response.json()["stdout"] == "ok\n"


@contextlib.contextmanager
def serve(port: int, *args: str, prefix: list[str] | None = None) -> Iterator[ServerProcess]:
    """``sandlot serve`` on ``port`` (started through ``prefix``, if any), healthy; SIGTERM and exit 0 after."""
    server = ServerProcess("--preload", "", "--log-level", "error", *args, port=port, prefix=prefix or (), timeout=60)
    server.start()
    try:
        yield server
    finally:
        assert server.stop(grace=30) == 0


def idle(url: str) -> bool:
    """No sandbox is being torn down or started: each live one is pooled or a session's."""
    health = httpx.get(url + "/healthz", timeout=10).json()
    return bool(health["sandboxes_alive"] == health["pool_ready"] + health["sessions"])


def fill(directory: str, *, inodes: bool) -> int:
    """Fill the filesystem of ``directory``: its blocks, or (``inodes``) its inodes. How many files it took."""
    made = 0
    with contextlib.suppress(OSError):
        if inodes:
            while True:
                os.close(os.open(os.path.join(directory, f"inode-{made}"), os.O_CREAT | os.O_WRONLY, 0o600))
                made += 1
        with open(os.path.join(directory, "blocks"), "wb") as f:
            made = 1
            while True:
                f.write(b"\0" * (1 << 20))
    return made


def sessions_until_refused(url: str, at_most: int) -> tuple[list[str], httpx.Response]:
    """Open sessions until one is refused (at most ``at_most`` tries): their ids and the refusal."""
    made = []
    for _ in range(at_most):
        answer = httpx.post(url + "/v1/sessions", json={}, timeout=60)
        if answer.status_code != 201:
            return made, answer
        made.append(answer.json()["id"])
    raise AssertionError(f"{at_most} sessions were opened; none was refused")


def health_says(url: str, what: str) -> bool:
    """/healthz is 503 and one of its reasons says ``what`` (a pool refill may be in flight when asked: retried)."""
    def says() -> bool:
        health = httpx.get(url + "/healthz", timeout=10)
        return health.status_code == 503 and any(what in reason for reason in health.json()["reasons"])
    return wait_until(says, 10)


def expect_exhausted(response: httpx.Response, what: str) -> None:
    assert response.status_code == 503, response.text
    body = response.json()["error"]
    assert body["type"] == "resource_exhausted" and what in body["message"], body
    assert int(response.headers["Retry-After"]) >= 1


@root_only
def test_a_full_state_directory_is_reported_refused_with_503_and_recovered() -> None:
    state = tempfile.mkdtemp(prefix="faults-disk-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,nr_inodes=4096,mode=0755", "tmpfs", state], check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        with running_server(ServerConfig(engine=EngineConfig(preload=(), pool_size=1))) as neighbour, \
                serve(port, "--state-dir", state, "--pool-size", "1"):
            # A server on another state directory in the same cgroup: starting, this one must not take the
            # neighbour's live sandboxes for a crashed instance's and kill them.
            session = httpx.post(neighbour + "/v1/sessions", json={}, timeout=30).json()["id"]
            cell = httpx.post(f"{neighbour}/v1/sessions/{session}/execute", json={"code": "x = 1"}, timeout=30)
            assert cell.status_code == 200 and cell.json()["status"] == "ok"
            assert run_ok(neighbour)
            assert run_ok(url)
            # The blocks: health says so at once. The workspaces are tmpfs mounts of their own
            # (as root), so runs are still served.
            fill(state, inodes=False)
            health = httpx.get(url + "/healthz", timeout=10)
            assert health.status_code == 503 and any("state directory's disk is full" in r for r in health.json()["reasons"])
            metrics = httpx.get(url + "/metrics", timeout=10).text
            assert "sandlot_healthy 0.0" in metrics and "sandlot_state_disk_free_bytes" in metrics
            assert run_ok(url)
            # The inodes too: a new sandbox's directories cannot be made. What needs one is refused with
            # a 503 that says why; the server neither fails (500) nor hangs.
            assert wait_until(lambda: idle(url), 10)  # a teardown after the fill would free room again
            time.sleep(0.3)
            fill(state, inodes=True)
            started = time.monotonic()
            made, refused = sessions_until_refused(url, 10)  # the pooled one; then room a teardown freed, if any
            assert len(made) <= 3 and time.monotonic() - started < 30
            expect_exhausted(refused, "no room left on the state directory's disk")
            # A session's volume is made before it takes a sandbox, so a refused session leaves the pooled one,
            # and runs may be served from it (a run's teardown frees the inode the next refill takes). A run is
            # served or refused with the reason: never a 500.
            for run in [httpx.post(url + "/v1/execute", json={"code": "1"}, timeout=30) for _ in range(3)]:
                assert run.status_code in (200, 503), run.text
                if run.status_code == 503:
                    expect_exhausted(run, "state directory's disk")
            assert health_says(url, "state directory's disk is full"), httpx.get(url + "/healthz").text
            # Room again: health and runs come back by themselves.
            for name in os.listdir(state):
                if name.startswith(("inode-", "blocks")):
                    os.unlink(os.path.join(state, name))
            assert wait_until(lambda: healthy(url), 20), httpx.get(url + "/healthz").text
            assert run_ok(url)
            assert httpx.post(url + "/v1/sessions", json={}, timeout=30).status_code == 201
    finally:
        subprocess.run(["umount", "-l", state], check=False)
        os.rmdir(state)


@root_only
def test_when_every_sandbox_uid_is_in_use_runs_get_429_until_one_is_free() -> None:
    # No pool: a refill in flight would hold the last uid for a moment, and a run could be served from it.
    config = ServerConfig(engine=EngineConfig(preload=(), pool_size=0, uid_count=16, max_sandboxes=64))
    with running_server(config) as url, httpx.Client(base_url=url, timeout=30) as client:
        sessions, refused = [], None
        for _ in range(20):
            answer = client.post("/v1/sessions", json={})
            if answer.status_code != 201:
                refused = answer
                break
            sessions.append(answer.json()["id"])
        assert refused is not None and len(sessions) == 16
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["type"] == "capacity" and "no sandbox uid is free" in refused.json()["error"]["message"]
        run = client.post("/v1/execute", json={"code": "1"})
        assert run.status_code == 429 and "uid" in run.json()["error"]["message"], run.text
        # Streamed, the refusal is the same 429 before any event, not a 200 whose only event is the error.
        for path, body in (("/v1/execute", {"code": "1", "stream": True}), ("/v1/commands", {"cmd": "true", "stream": True})):
            streamed = client.post(path, json=body)
            assert streamed.status_code == 429 and int(streamed.headers["Retry-After"]) >= 1, (path, streamed.text)
            assert streamed.json()["error"]["type"] == "capacity", streamed.text
        assert health_says(url, "no sandbox uid is free"), client.get("/healthz").text
        assert "sandlot_sandbox_uids_free 0.0" in client.get("/metrics").text
        for session_id in sessions[:3]:
            assert client.delete(f"/v1/sessions/{session_id}").status_code == 204
        assert wait_until(lambda: healthy(url), 15), client.get("/healthz").text
        assert run_ok(url)
        assert client.post("/v1/sessions", json={}).status_code == 201
        for session_id in sessions[3:]:
            client.delete(f"/v1/sessions/{session_id}")


@contextlib.contextmanager
def pids_cgroup() -> Iterator[str]:
    """A pids cgroup of the test's own below ours, removed afterwards (skips where there is none to make)."""
    hierarchy = detect().get("pids")
    if hierarchy is None:
        pytest.skip("no pids controller here")
    path = os.path.join(hierarchy.own_dir, f"faults-pids-{os.getpid()}")
    os.mkdir(path)
    try:
        if not os.path.exists(os.path.join(path, "pids.max")):
            pytest.skip("the pids controller is not enabled below this cgroup (cgroup v2 with processes in ours)")
        yield path
    finally:
        for _ in range(100):
            try:
                os.rmdir(path)
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                time.sleep(0.1)


def write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


@root_only
@pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")
def test_the_servers_own_pids_limit_gives_503_and_recovers() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with pids_cgroup() as cgroup:
        # The server starts inside the cgroup, so sandlot nests its own cgroups (and every sandbox) below it.
        prefix = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh"]
        with serve(port, "--pool-size", "2", prefix=prefix):
            assert wait_until(lambda: httpx.get(url + "/healthz").json()["pool_ready"] == 2, 15)
            with open(os.path.join(cgroup, "pids.current")) as f:
                write(os.path.join(cgroup, "pids.max"), f.read().strip())  # not one process or thread more
            started = time.monotonic()
            made, refused = sessions_until_refused(url, 20)  # the two pooled ones; then no room to fork
            assert len(made) <= 4 and time.monotonic() - started < 30
            expect_exhausted(refused, "out of processes")
            run = httpx.post(url + "/v1/execute", json={"code": "1"}, timeout=60)
            assert run.status_code in (200, 503), run.text
            if run.status_code == 503:
                expect_exhausted(run, "out of processes")
            # (Refused sessions leave the pool full: a session's volume is made before it takes a sandbox, and a
            # run's teardown frees the pids the next refill takes, so health may rightly say all is well here.)
            write(os.path.join(cgroup, "pids.max"), "max")
            assert wait_until(lambda: healthy(url), 20), httpx.get(url + "/healthz").text
            assert run_ok(url)
            assert httpx.post(url + "/v1/sessions", json={}, timeout=30).status_code == 201
