"""Durable sessions (issue #11), black-box: a real ``sandlot serve`` with a data dir of its own, real sandboxes.

Pause and resume, fork, restart survival after SIGTERM and after ``kill -9`` mid-cell, saved state over its
cap, corrupt and hostile saved state, a damaged database row, archives (and hostile ones), the workspace
quota after a restart, and nothing left behind after a delete.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import signal
import sqlite3
import struct
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandlot.testing.serving import ServerProcess, free_port
from sandlot_runtime import snapshot, statefile

KEY_A, KEY_B = "durable-key-a", "durable-key-b"
A = {"Authorization": f"Bearer {KEY_A}"}
B = {"Authorization": f"Bearer {KEY_B}"}


class Server(ServerProcess):
    """A ``sandlot serve`` on ``data_dir``, started at once; ``restart`` keeps the dir (and the port)."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        super().__init__(env={"SANDLOT_DATA_DIR": str(data_dir), "SANDLOT_API_KEYS": f"{KEY_A},{KEY_B}",
                              "SANDLOT_POOL_SIZE": "2", "SANDLOT_PRELOAD": "numpy,pandas",
                              "SANDLOT_LOG_LEVEL": "warning", **env}, timeout=90)
        self.data_dir = data_dir
        self.start()

    def client(self, headers: dict[str, str] = A) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("durable-data"))
    try:
        yield running
    finally:
        if running.process is not None:
            assert running.stop() == 0


def new_session(c: httpx.Client, **body: object) -> str:
    created = c.post("/v1/sessions", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def run(c: httpx.Client, session: str, code: str) -> dict:  # type: ignore[type-arg]
    response = c.post(f"/v1/sessions/{session}/execute", json={"code": code})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


STATE_CELL = """
import numpy as np, pandas as pd
count = 41
frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
weights = np.polyfit([0, 1, 2, 3], [1, 3, 5, 7], 1)
class Point:
    def __init__(self, x): self.x = x
    def doubled(self): return Point(self.x * 2)
where = Point(4)
def bump(n, by=1): return n + by + count
squares = (i * i for i in range(3))
handle = open("notes.txt", "w")
open("data.txt", "w").write("kept")
"""
CHECK_CELL = ("print(count, frame['a'].sum(), list(frame['b']), [round(float(w), 6) for w in weights], "
              "where.doubled().x, type(where).__name__, bump(1), np.__name__, open('data.txt').read())")
CHECKED = "41 6 ['x', 'y', 'z'] [2.0, 1.0] 8 Point 43 numpy kept\n"


def sandbox_pids_of(server: Server) -> set[int]:
    zygote = httpx.get(server.url + "/healthz").json()["zygote"]["pid"]
    with open(f"/proc/{zygote}/task/{zygote}/children") as f:
        return {int(pid) for pid in f.read().split()}


def test_pause_and_resume_keep_names_files_and_count(server: Server) -> None:
    with server.client() as c:
        session = new_session(c)
        assert run(c, session, STATE_CELL)["status"] == "ok"
        before = sandbox_pids_of(server)
        paused = c.post(f"/v1/sessions/{session}/pause")
        assert paused.status_code == 200 and paused.json()["state"] == "paused"
        assert paused.json()["execution_count"] == 1
        assert len(sandbox_pids_of(server) & before) < len(before)  # its interpreter is gone
        listed = c.get("/v1/sessions", params={"state": "paused"}).json()["sessions"]
        assert session in [s["id"] for s in listed]
        assert session not in [s["id"] for s in c.get("/v1/sessions", params={"state": "running"}).json()["sessions"]]
        # Files can be read and written while paused.
        assert c.get(f"/v1/sessions/{session}/files/data.txt").content == b"kept"
        assert c.put(f"/v1/sessions/{session}/files/while-paused.txt", content=b"hello").status_code == 201
        assert {"data.txt", "while-paused.txt"} <= {f["path"] for f in c.get(f"/v1/sessions/{session}/files").json()["files"]}
        resumed = c.post(f"/v1/sessions/{session}/resume")
        assert resumed.status_code == 200 and resumed.json()["state"] == "running"
        result = run(c, session, CHECK_CELL + "\nprint(open('while-paused.txt').read())")
        assert result["status"] == "ok", result
        assert result["stdout"] == CHECKED + "hello\n"
        assert result["execution_count"] == 2
        restored = set(result["resumed"]["restored"])
        assert {"count", "frame", "weights", "Point", "where", "bump", "np", "pd"} <= restored
        lost = {entry["name"]: entry["reason"] for entry in result["resumed"]["lost"]}
        assert set(lost) == {"squares", "handle"} and "generator" in lost["squares"] and "TextIOWrapper" in lost["handle"]
        assert "resumed" not in run(c, session, "1") or run(c, session, "1")["resumed"] is None  # only the first result
        assert c.delete(f"/v1/sessions/{session}").status_code == 204


def test_the_next_cell_resumes_a_paused_session(server: Server) -> None:
    with server.client() as c:
        session = new_session(c)
        run(c, session, "x = 'back'")
        c.post(f"/v1/sessions/{session}/pause")
        result = run(c, session, "print(x)")
        assert result["stdout"] == "back\n" and result["resumed"]["restored"] == ["x"]
        assert c.get(f"/v1/sessions/{session}").json()["state"] == "running"
        c.delete(f"/v1/sessions/{session}")


def test_modules_a_cell_imported_without_a_name_are_imported_again(server: Server) -> None:
    # The snapshot notes imports as they happen (sandlot_runtime.new_imports), not by walking sys.modules.
    loaded = "import sys; print([m in sys.modules for m in ('tabnanny', 'pyclbr', 'xml.dom.minidom', 'xml')])"
    with server.client() as c:
        session = new_session(c)
        assert run(c, session, loaded)["stdout"] == "[False, False, False, False]\n"
        assert run(c, session, "import tabnanny, xml.dom.minidom\ndel tabnanny, xml")["status"] == "ok"
        c.post(f"/v1/sessions/{session}/pause")
        result = run(c, session, loaded)
        assert result["resumed"] is not None
        # Top-level modules come back (their submodules are the top-level one's to import); pyclbr never was.
        assert result["stdout"] == "[True, False, False, True]\n"
        c.delete(f"/v1/sessions/{session}")


def test_fork_gives_an_independent_copy(server: Server) -> None:
    with server.client() as c:
        source = new_session(c)
        run(c, source, "value = [1, 2]\nopen('f.txt', 'w').write('source')")
        forked = c.post(f"/v1/sessions/{source}/fork")
        assert forked.status_code == 201 and forked.json()["state"] == "paused"
        copy = forked.json()["id"]
        assert copy != source and forked.json()["execution_count"] == 1
        run(c, copy, "value.append(3)\nopen('f.txt', 'w').write('copy')")
        run(c, source, "value.append(99)")
        assert run(c, copy, "print(value, open('f.txt').read())")["stdout"] == "[1, 2, 3] copy\n"
        assert run(c, source, "print(value, open('f.txt').read())")["stdout"] == "[1, 2, 99] source\n"
        notebook = c.get(f"/v1/sessions/{copy}/notebook").json()
        assert [cell["source"] for cell in notebook["cells"]][0].startswith("value = [1, 2]")
        with server.client(B) as other:  # another key sees neither
            assert other.post(f"/v1/sessions/{source}/fork").status_code == 404
        for session in (source, copy):
            assert c.delete(f"/v1/sessions/{session}").status_code == 204


def test_a_snapshot_over_its_cap_is_not_kept_and_says_so(tmp_path: Path) -> None:
    capped = Server(tmp_path / "data", SANDLOT_SNAPSHOT_MAX_BYTES="100000")
    try:
        with capped.client() as c:
            session = new_session(c)
            run(c, session, "small = 1\nbig = bytes(500_000)")
            c.post(f"/v1/sessions/{session}/pause")
            result = run(c, session, "print('small' in globals(), 'big' in globals())")
            assert result["stdout"] == "False False\n"
            reasons = {entry["name"]: entry["reason"] for entry in result["resumed"]["lost"]}
            assert set(reasons) == {"small", "big"} and "snapshot limit of 100000 bytes" in reasons["big"]
    finally:
        assert capped.stop() == 0


def test_kill_9_mid_cell_then_restart_brings_every_session_back(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    try:
        with server.client() as c, server.client(B) as other:
            first = new_session(c)
            run(c, first, STATE_CELL)
            second = new_session(other)
            run(other, second, "mine = 'b'\nopen('b.txt', 'w').write('bee')")
            # A cell is running when the server dies.
            spinner = subprocess.Popen([sys.executable, "-c", "import httpx, sys; httpx.post(sys.argv[1], headers="
                                        "{'Authorization': sys.argv[2]}, json={'code': 'import time\\ntime.sleep(60)'}, timeout=90)",
                                        f"{server.url}/v1/sessions/{first}/execute", A["Authorization"]],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.5)
            server.restart(signal.SIGKILL)
            spinner.wait(30)
            got = c.get(f"/v1/sessions/{first}").json()
            assert got["state"] == "paused" and got["execution_count"] == 2
            assert [s["id"] for s in c.get("/v1/sessions").json()["sessions"]] == [first]  # owners kept
            assert [s["id"] for s in other.get("/v1/sessions").json()["sessions"]] == [second]
            assert c.get(f"/v1/sessions/{second}").status_code == 404
            result = run(c, first, CHECK_CELL)
            assert result["stdout"] == CHECKED and result["execution_count"] == 3
            assert run(other, second, "print(mine, open('b.txt').read())")["stdout"] == "b bee\n"
            cells = c.get(f"/v1/sessions/{first}/notebook").json()["cells"]
            interrupted = cells[1]["outputs"]
            assert interrupted and interrupted[0]["ename"] == "SessionInterrupted", interrupted
            # The workspace is still capped: the default is 512 MiB; twelve files of 50 MiB do not fit.
            over = run(c, first, "try:\n    for i in range(12):\n        open(f'big{i}', 'wb').write(bytes(50 << 20))\n"
                                 "except OSError as e:\n    print(e.errno)")
            assert over["stdout"] == "28\n", over  # ENOSPC
            run(c, first, "import os, glob\nfor name in glob.glob('big*'):\n    os.remove(name)")
    finally:
        assert server.stop() == 0


def test_sigterm_restart_keeps_sessions_and_their_history(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    try:
        with server.client() as c:
            session = new_session(c)
            run(c, session, "a = 1")
            run(c, session, "a += 1")
            server.restart()
            assert run(c, session, "a")["outputs"][-1]["data"]["text/plain"] == "2"
            sources = [cell["source"] for cell in c.get(f"/v1/sessions/{session}/notebook").json()["cells"]]
            assert sources == ["a = 1", "a += 1", "a"]
    finally:
        assert server.stop() == 0


SLOW_TO_SAVE = """
import time
class Slow:
    def __reduce__(self):
        time.sleep(1.5)
        return (int, (5,))
"""


def test_sigterm_right_after_a_cell_keeps_that_cells_state(tmp_path: Path) -> None:
    """The save that follows a cell's reply is part of the cell: a shutdown that comes right after the reply
    waits for it (bounded) instead of killing the interpreter mid-save."""
    server = Server(tmp_path / "data")
    try:
        with server.client() as c:
            session = new_session(c)
            run(c, session, "a = 1")
            # An object that takes a second to pickle: the SIGTERM lands while the state is being saved.
            run(c, session, SLOW_TO_SAVE + "slow = Slow()\na += 1")
            server.restart()
            result = run(c, session, "print(a, slow)")
            assert result["stdout"] == "2 5\n", result
            assert result.get("restarted") is not True or result.get("lost") in (None, []), result
    finally:
        assert server.stop() == 0


def _state_slot(names: dict[str, object], generation: int) -> bytes:
    """A saved-state slot in the runtime's documented layout (sandlot_runtime/statefile.py)."""
    summary = pickle.dumps({"format": snapshot.FORMAT, "count": generation, "names": sorted(names), "modules": {},
                            "imported": [], "lost": [], "skipped": None})
    return (struct.pack("<8sQ", statefile.MAGIC, generation) + pickle.dumps(names) + summary
            + struct.pack("<QQ8s", len(summary), generation, statefile.MAGIC))


def test_corrupt_and_hostile_saved_state_loses_the_names_not_the_files(server: Server) -> None:
    with server.client() as c:
        session = new_session(c)
        run(c, session, "x = 1\nopen('keep.txt', 'w').write('kept')")
        c.post(f"/v1/sessions/{session}/pause")
        # Cut short (as a crash mid-write would leave it).
        slot = f"/v1/sessions/{session}/files/.sandlot/state-a"
        assert c.put(slot, content=c.get(slot).content[:20]).status_code == 201
        result = run(c, session, "print(open('keep.txt').read(), 'x' in globals())")
        assert result["stdout"] == "kept False\n"
        assert any("unreadable" in entry["reason"] for entry in result["resumed"]["lost"]), result["resumed"]

        class Exit:  # a saved state whose loading ends the interpreter
            def __reduce__(self) -> tuple[object, ...]:
                return (os._exit, (3,))

        c.post(f"/v1/sessions/{session}/pause")
        forged = f"/v1/sessions/{session}/files/.sandlot/state-b"
        assert c.put(forged, content=_state_slot({"x": Exit()}, 1000)).status_code == 201
        result = run(c, session, "print(open('keep.txt').read(), 'x' in globals())")
        assert result["status"] == "ok" and result["stdout"] == "kept False\n"
        assert "ended the interpreter" in result["resumed"]["lost"][0]["reason"]
        assert httpx.get(server.url + "/healthz").status_code == 200
        # And a well-formed one loads (the runtime, not the host, reads it).
        c.post(f"/v1/sessions/{session}/pause")
        assert c.put(forged, content=_state_slot({"x": "planted"}, 2000)).status_code == 201
        assert run(c, session, "print(x)")["stdout"] == "planted\n"
        c.delete(f"/v1/sessions/{session}")


def test_a_damaged_database_row_brings_the_session_back_with_its_files(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    try:
        with server.client() as c:
            session = new_session(c)
            run(c, session, "y = 5\nopen('f.txt', 'w').write('file')")
            server.stop()
            with sqlite3.connect(tmp_path / "data" / "sessions.db") as db:
                db.execute("UPDATE sessions SET limits = '{not json', snapshot = 'null]' WHERE id = ?", (session,))
            server.start()
            result = run(c, session, "print(open('f.txt').read())")
            assert result["status"] == "ok" and result["stdout"] == "file\n"
            assert "damaged" in result["resumed"]["lost"][0]["reason"]
    finally:
        assert server.stop() == 0


def test_archive_round_trip_belongs_to_the_importing_key(server: Server) -> None:
    with server.client() as c, server.client(B) as other:
        session = new_session(c)
        run(c, session, "z = {'k': [1, 2]}\nimport os\nos.makedirs('sub', exist_ok=True)\nopen('sub/s.txt', 'w').write('deep')")
        archive = c.get(f"/v1/sessions/{session}/archive")
        assert archive.status_code == 200 and archive.headers["content-type"] == "application/gzip"
        with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
            names = tar.getnames()
            manifest = json.load(tar.extractfile("sandlot-session/manifest.json"))  # type: ignore[arg-type]
        assert "sandlot-session/files/sub/s.txt" in names
        assert "sandlot-session/files/.sandlot/state-a" in names, names
        assert manifest["format"] == "sandlot-session" and manifest["version"] == 1
        imported = other.post("/v1/sessions/import", content=archive.content)
        assert imported.status_code == 201, imported.text
        copy = imported.json()["id"]
        assert run(other, copy, "print(z, open('sub/s.txt').read())")["stdout"] == "{'k': [1, 2]} deep\n"
        assert c.get(f"/v1/sessions/{copy}").status_code == 404  # the importer's, not the exporter's
        c.delete(f"/v1/sessions/{session}")
        other.delete(f"/v1/sessions/{copy}")


def _archive(members: list[tuple[tarfile.TarInfo, bytes | None]], manifest: bool = True) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        if manifest:
            data = json.dumps({"format": "sandlot-session", "version": 1, "session": {}, "cells": []}).encode()
            info = tarfile.TarInfo("sandlot-session/manifest.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_hostile_archives_are_refused(server: Server, tmp_path: Path) -> None:
    link = tarfile.TarInfo("sandlot-session/files/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hostile = {
        "traversal": _archive([_file("sandlot-session/files/../../escape.txt", b"x")]),
        "absolute": _archive([_file("/etc/evil", b"x")]),
        "link": _archive([(link, None)]),
        "outside": _archive([_file("elsewhere/file", b"x")]),
        "no manifest": _archive([_file("sandlot-session/files/a", b"x")], manifest=False),
        "not gzip": b"PK\x03\x04 this is a zip",
    }
    with server.client() as c:
        before = {s["id"] for s in c.get("/v1/sessions").json()["sessions"]}
        for what, body in hostile.items():
            refused = c.post("/v1/sessions/import", content=body)
            assert refused.status_code == 400, (what, refused.text)
            assert refused.json()["error"]["type"] == "invalid_request"
        # A bomb: 1 GB of zeros, a megabyte compressed; the default workspace is 512 MiB.
        bomb = io.BytesIO()
        with gzip.GzipFile(fileobj=bomb, mode="wb", compresslevel=9) as gz:
            tar = tarfile.open(fileobj=gz, mode="w|")
            manifest = json.dumps({"format": "sandlot-session", "version": 1, "session": {}, "cells": []}).encode()
            info = tarfile.TarInfo("sandlot-session/manifest.json")
            info.size = len(manifest)
            tar.addfile(info, io.BytesIO(manifest))
            info = tarfile.TarInfo("sandlot-session/files/zeros")
            info.size = 1 << 30

            class Zeros(io.RawIOBase):
                left = 1 << 30

                def readable(self) -> bool:
                    return True

                def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
                    n = min(len(buffer), self.left)
                    buffer[:n] = bytes(n)
                    self.left -= n
                    return n

            tar.addfile(info, io.BufferedReader(Zeros()))
            tar.close()
        refused = c.post("/v1/sessions/import", content=bomb.getvalue())
        assert refused.status_code == 413, refused.text
        assert {s["id"] for s in c.get("/v1/sessions").json()["sessions"]} == before
    assert not (tmp_path / "escape.txt").exists()
    sessions_dir = server.data_dir / "sessions"
    assert len(os.listdir(sessions_dir)) == len(before)  # nothing half-imported left


def test_nothing_is_left_after_a_delete(server: Server) -> None:
    with server.client() as c:
        session = new_session(c)
        run(c, session, "open('x', 'w').write('y')")
        volume = server.data_dir / "sessions" / session
        assert volume.is_dir()
        assert c.delete(f"/v1/sessions/{session}").status_code == 204
        assert not volume.exists()
        with open("/proc/self/mountinfo") as f:
            assert str(volume) not in f.read()
        with sqlite3.connect(server.data_dir / "sessions.db") as db:
            assert db.execute("SELECT count(*) FROM cells WHERE session_id = ?", (session,)).fetchone() == (0,)
            assert db.execute("SELECT count(*) FROM sessions WHERE id = ?", (session,)).fetchone() == (0,)


def test_a_second_server_on_the_same_data_dir_is_refused(server: Server) -> None:
    env = {**server.env}
    second = subprocess.run([sys.executable, "-m", "sandlot.cli", "serve", "--port", str(free_port())], env=env,
                            capture_output=True, timeout=120)
    assert second.returncode != 0
    assert b"in use by another sandlot server" in second.stderr


def test_the_cli_lists_pauses_exports_and_imports(server: Server, tmp_path: Path) -> None:
    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "sandlot.cli", "sessions", "--url", server.url, "--api-key", KEY_A,
                               *args], capture_output=True, timeout=120, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    with server.client() as c:
        session = new_session(c)
        run(c, session, "w = 'cli'")
        assert f"{session}  paused" in cli("pause", session)
        assert session in cli("list", "--state", "paused") and session not in cli("list", "--state", "running")
        cli("export", session, "-o", str(tmp_path / "s.tar.gz"))
        copy = cli("import", str(tmp_path / "s.tar.gz")).split()[0]
        assert run(c, copy, "print(w)")["stdout"] == "cli\n"
        cli("delete", session)
        cli("delete", copy)
        assert c.get(f"/v1/sessions/{session}").status_code == 404


def test_a_name_that_cannot_be_saved_loses_only_itself(server: Server) -> None:
    with server.client() as c:
        session = new_session(c)
        code = ("import abc, enum\nkept = 'yes'\nclass Color(enum.Enum):\n    RED = 1\n"
                "class Base(abc.ABC):\n    @abc.abstractmethod\n    def f(self): ...\n"
                "class Impl(Base):\n    def f(self): return 5\nimpl = Impl()\n"
                "deep = node = []\nfor _ in range(100_000):\n    node.append([])\n    node = node[0]")
        assert run(c, session, code)["status"] == "ok"
        c.post(f"/v1/sessions/{session}/pause")
        result = run(c, session, "print(kept, impl.f(), isinstance(impl, Base))")
        assert result["stdout"] == "yes 5 True\n", result
        lost = {entry["name"]: entry["reason"] for entry in result["resumed"]["lost"]}
        assert {"Color", "deep"} <= set(lost) and "RecursionError" in lost["deep"], lost
        assert "kept" in result["resumed"]["restored"]
        c.delete(f"/v1/sessions/{session}")
