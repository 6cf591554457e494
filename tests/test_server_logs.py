"""The server's JSON log lines are written by a thread of their own (server/logs.py), off the request path.

Black-box: a real ``sandlot serve`` whose stderr is a pipe nobody reads. Once the pipe is full, a
write to it blocks; the server must go on answering (its log thread waits, not its event loop),
and once the pipe is read again the lines it wrote are whole JSON lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import httpx

from sandlot.testing.serving import free_port, serve_command

PIPE_BYTES = 64 * 1024  # Linux's default pipe capacity
REQUESTS = 2000  # each logs a line of ~150 bytes: several times what the pipe holds


def test_a_stderr_nobody_reads_does_not_stall_the_server() -> None:
    port = free_port()
    env = {**os.environ, "SANDLOT_DATA_DIR": ""}
    server = subprocess.Popen(serve_command("--port", str(port), "--pool-size", "1", "--log-level", "info"),
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert server.stderr is not None
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=url, timeout=5) as client:
            for _ in range(REQUESTS):  # a stalled event loop would time these out
                assert client.get("/healthz").status_code == 200
            assert client.post("/v1/execute", json={"code": "print(1)"}).json()["stdout"] == "1\n"
        # The pipe was full: the lines waited in the log thread's queue. Read them now.
        lines: list[bytes] = []
        reader = threading.Thread(target=lambda: lines.extend(server.stderr.readlines()) if server.stderr else None)
        reader.start()
        server.terminate()
        assert server.wait(60) == 0
        reader.join(30)
        assert sum(len(line) for line in lines) > PIPE_BYTES, "the pipe never filled: the test proved nothing"
        records = [json.loads(line) for line in lines]
        served = [r for r in records if r.get("msg") == "request" and r.get("path") == "/healthz"]
        assert len(served) >= REQUESTS
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stderr is not None:
            server.stderr.close()
