"""``sandlot serve`` as an operator runs it: a real process, real signals.

SIGTERM (or SIGINT) drains: the server keeps accepting connections and answers new calls
and /healthz with 503, says so in its log, lets running cells finish, then exits 0 and leaves
no sandbox process, mount, cgroup or state directory behind. A call that outlives
``--shutdown-grace`` is stopped and still answered: a JSON 503, or, for a stream, a last
``error`` event. Nothing of this logs a traceback. A public address without keys is refused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import dead_instances

from sandlot.testing.serving import free_port

SANDLOT = [sys.executable, "-m", "sandlot.cli"]
START_TIMEOUT = 60.0


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def parents() -> dict[int, int]:
    """pid -> parent pid, for every process we can see."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[int(entry)] = int(fields[1])
    return found


def descendants(pid: int) -> set[int]:
    tree = parents()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in tree.items() if parent in frontier} - found
        found |= frontier
    return found


def living_runtime_processes() -> set[int]:
    """Processes running sandlot's runtime (zygotes, sandboxes); zombies have no cmdline and do not count."""
    return {pid for pid in parents() if "sandlot_runtime" in cmdline(pid)}


def server_leftovers(server_pid: int, runtime_before: set[int]) -> list[str]:
    """What a stopped server left: runtime processes not of this test process's engines, mounts,
    cgroups and state directories named after the server's pid."""
    found = []
    ours = runtime_before | {p for p in living_runtime_processes() for q in runtime_before if p in descendants(q)}
    found += [f"process {p}: {cmdline(p)[:100]}" for p in living_runtime_processes() - ours]
    marker = f"sandlot-{server_pid}-"
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if marker in line]
    # Another test run's engine may share the server's pid number in its own pid namespace:
    # only what no live engine holds (by its instance lock) is left over.
    return found + dead_instances(marker)


class Server:
    """A ``sandlot serve`` subprocess on a free loopback port."""

    def __init__(self, *args: str, host: str = "127.0.0.1", log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log_file = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*SANDLOT, "serve", "--host", host, "--port", str(self.port), "--pool-size", "2",
                                      "--preload", "", "--log-level", "info", *args],
                                     stdout=self._log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def wait_healthy(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}"
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=2)
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not become healthy")

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._log_file.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def start(*args: str, host: str = "127.0.0.1", env: dict[str, str] | None = None) -> Server:
        server = Server(*args, host=host, log=tmp_path / f"server-{len(started)}.log", env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def run_cell_in_thread(url: str, session_id: str, code: str, outcome: dict[str, Any]) -> threading.Thread:
    def call() -> None:
        started = time.monotonic()
        try:
            with httpx.Client(timeout=60) as c:
                outcome["response"] = c.post(f"{url}/v1/sessions/{session_id}/execute", json={"code": code})
        except httpx.TransportError as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/v1/sessions/{session_id}", timeout=10).json()["execution_count"] < 1:  # it has started
        assert time.monotonic() < deadline, "the cell did not start"
        time.sleep(0.05)
    return thread


def stream_in_thread(url: str, code: str, outcome: dict[str, Any]) -> threading.Thread:
    """Stream a one-shot run; ``outcome["events"]`` gets (name, data) for each event; returns once it has begun."""
    begun = threading.Event()

    def call() -> None:
        events: list[tuple[str, Any]] = []
        outcome["events"] = events
        try:
            with httpx.Client(timeout=60) as c, \
                    c.stream("POST", f"{url}/v1/execute", json={"code": code, "stream": True, "timeout": 60}) as r:
                name = None
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        name = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and name is not None:
                        events.append((name, json.loads(line.split(":", 1)[1])))
                        begun.set()
        except httpx.TransportError as exc:
            outcome["error"] = exc
        finally:
            begun.set()

    thread = threading.Thread(target=call)
    thread.start()
    assert begun.wait(30), "the stream did not begin"
    return thread


def wait_for_log(server: Server, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while text not in (log := server.log.read_text()):
        assert time.monotonic() < deadline, f"{text!r} not in the log: {log[-2000:]}"
        time.sleep(0.05)
    return log


def assert_clean_log(server: Server) -> str:
    """The log of a stopped server: JSON lines only, none of them a traceback or an error."""
    server.stop()
    log = server.log.read_text()
    for line in log.splitlines():
        record = json.loads(line)  # a plain-text traceback would not parse
        assert record["level"] != "error" and "exc" not in record, line
    assert "CancelledError" not in log and "Traceback" not in log
    return log


def test_sigterm_lets_the_running_cell_finish_then_exits_0_leaving_nothing(serve: Any) -> None:
    runtime_before = living_runtime_processes()
    server = serve()
    server.wait_healthy()
    session_id = httpx.post(f"{server.url}/v1/sessions", timeout=30).json()["id"]
    assert descendants(server.proc.pid) & living_runtime_processes(), "the check below would prove nothing"
    outcome: dict[str, Any] = {}
    thread = run_cell_in_thread(server.url, session_id, "import time\ntime.sleep(1)\n'finished'", outcome)
    server.terminate()
    wait_for_log(server, "draining: 1 call in flight")
    # New connections are still accepted while the cell finishes, and told the server is going.
    during = httpx.get(f"{server.url}/healthz", timeout=5)
    assert during.status_code == 503 and during.json()["status"] == "draining"
    refused = httpx.post(f"{server.url}/v1/execute", json={"code": "1"}, timeout=5)
    assert refused.status_code == 503 and refused.json()["error"]["type"] == "unavailable"
    thread.join(30)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome
    response = outcome["response"]
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["outputs"][-1]["data"]["text/plain"] == "'finished'"
    assert server.proc.wait(30) == 0, server.log.read_text()[-3000:]
    assert_clean_log(server)
    assert server_leftovers(server.proc.pid, runtime_before) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_calls_longer_than_the_grace_are_stopped_with_a_proper_answer(serve: Any, sig: signal.Signals) -> None:
    runtime_before = living_runtime_processes()
    server = serve("--shutdown-grace", "1")
    server.wait_healthy()
    session_id = httpx.post(f"{server.url}/v1/sessions", timeout=30).json()["id"]
    cell: dict[str, Any] = {}
    cell_thread = run_cell_in_thread(server.url, session_id, "import time\ntime.sleep(30)", cell)
    stream: dict[str, Any] = {}
    stream_thread = stream_in_thread(server.url, "import time\nfor i in range(300):\n    print(i, flush=True)\n"
                                                 "    time.sleep(0.1)", stream)
    started = time.monotonic()
    server.proc.send_signal(sig)
    assert server.proc.wait(20) == 0, server.log.read_text()[-3000:]
    assert time.monotonic() - started < 15
    cell_thread.join(20)
    stream_thread.join(20)
    assert not cell_thread.is_alive() and not stream_thread.is_alive()
    # The cell did not get to finish: the contract's 503, not a plain-text 500 or a cut connection.
    assert "error" not in cell, cell
    assert cell["response"].status_code == 503, cell["response"].text
    assert cell["response"].json()["error"]["type"] == "unavailable"
    # The stream ends with an `error` event (never `done`: the run did not finish), not a cut connection.
    assert "error" not in stream, stream
    names = [name for name, _data in stream["events"]]
    assert names[0] == "stdout" and names[-1] == "error" and "done" not in names, names
    assert stream["events"][-1][1]["error"]["type"] == "unavailable"
    log = assert_clean_log(server)
    assert "draining: 2 calls in flight, waiting up to 1s" in log
    assert "stopping 2 calls still in flight" in log
    assert server_leftovers(server.proc.pid, runtime_before) == []


def test_a_public_address_without_keys_is_refused(serve: Any) -> None:
    server = serve(host="0.0.0.0")
    assert server.proc.wait(60) != 0
    output = server.log.read_text().strip()
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert "0.0.0.0" in output and "--insecure-no-auth-on-public-interface" in output


@pytest.mark.parametrize("args", [("--insecure-no-auth-on-public-interface",), ("--api-key", "public-key-0123")],
                         ids=["insecure-flag", "api-key"])
def test_a_public_address_is_allowed_with_keys_or_the_explicit_flag(serve: Any, args: tuple[str, ...]) -> None:
    server = serve(*args, host="0.0.0.0")
    assert server.wait_healthy()["status"] == "ok"
    listed = httpx.get(f"{server.url}/v1/sessions", timeout=10)
    if "--api-key" in args:
        assert listed.status_code == 401
        keyed = httpx.get(f"{server.url}/v1/sessions", headers={"Authorization": "Bearer public-key-0123"}, timeout=10)
        assert keyed.status_code == 200
    else:
        assert listed.status_code == 200
    server.terminate()
    assert server.proc.wait(30) == 0


def test_a_setting_without_a_flag_reads_its_variable(serve: Any) -> None:
    server = serve(env={"SANDLOT_MAX_BATCH_ITEMS": "2"})
    server.wait_healthy()
    refused = httpx.post(f"{server.url}/v1/batch", json={"items": [{"code": "1"}] * 3}, timeout=30)
    assert refused.status_code == 400 and "at most 2 items" in refused.json()["error"]["message"]
    assert httpx.post(f"{server.url}/v1/batch", json={"items": [{"code": "1"}] * 2}, timeout=30).status_code == 200
    server.terminate()
    assert server.proc.wait(30) == 0
