"""The session records on disk: one SQLite database, and every query it gets.

What lives here is what a session is when no process holds it: its id, owner,
limits, environment, network policy, execution count, the summary of its saved
state, and its cell history (for the notebook). The interpreter state itself is a file in the
session's workspace (``sandlot_runtime.snapshot``); the files are in the
workspace's volume (``volumes``).

WAL mode with ``synchronous=NORMAL``: a commit survives the server being killed
at any moment (what the tests do); after a power cut the database is still
consistent but may miss its last commits. The schema is versioned with
``PRAGMA user_version`` and grows by numbered migrations, never by editing one.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("sandlot")

MIGRATIONS: tuple[str, ...] = (
    # 1: sessions and their cells
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_active_at REAL NOT NULL,
        execution_count INTEGER NOT NULL DEFAULT 0,
        idle_timeout REAL NOT NULL,
        limits TEXT NOT NULL,
        env TEXT NOT NULL,
        tools TEXT,
        snapshot TEXT
    );
    CREATE INDEX sessions_by_owner ON sessions (owner, state);
    CREATE TABLE cells (
        session_id TEXT NOT NULL,
        execution_count INTEGER NOT NULL,
        code TEXT NOT NULL,
        outputs TEXT NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (session_id, execution_count)
    ) WITHOUT ROWID;
    """,
    # 2: the environment a session runs in (sessions made before environments ran in the default one)
    """
    ALTER TABLE sessions ADD COLUMN environment TEXT NOT NULL DEFAULT 'default';
    """,
    # 3: its egress policy, the allow list's entries as JSON (NULL: no network, as every session made before had)
    """
    ALTER TABLE sessions ADD COLUMN network TEXT;
    """,
)

RUNNING, PAUSED = "running", "paused"
INTERRUPTED = "interrupted"
"""A cell's status when the server died while it ran."""


@dataclass
class SessionRecord:
    id: str
    owner: str
    state: str
    created_at: float
    last_active_at: float
    execution_count: int
    idle_timeout: float
    limits: dict[str, Any]
    env: dict[str, str]
    tools: list[str] | None
    snapshot: dict[str, Any] | None
    """The last ``saved`` summary (count, names, lost, bytes, skipped), or None before any."""
    environment: str = "default"
    """The environment its interpreters run in (``sandlot.environments``)."""
    network: list[str] | None = None
    """Its egress policy as it was granted (the entries' text; None: no network). Checked again against the
    operator's allow list whenever the session is brought back (``Engine.kept_network``)."""
    damaged: list[str] = field(default_factory=list)
    """Fields of the row that could not be read (they came back as defaults)."""


@dataclass
class CellRecord:
    execution_count: int
    code: str
    outputs: list[dict[str, Any]]
    status: str


class SessionStore:
    """The sessions database. Calls are short and made from the event loop's thread; one lock
    serializes them for the worker threads (fork, import) that also write."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
                log.info("sandlot: session store %s migrated to version %d", self.path, number)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- start-up ------------------------------------------------------------

    def recover(self) -> int:
        """After a stop or crash: no session has an interpreter, and a cell that was running was
        cut off by the restart. Two statements, however many sessions there are."""
        with self._lock, self._db:
            self._db.execute("UPDATE cells SET status = ?, outputs = ? WHERE status = ?",
                             (INTERRUPTED, json.dumps([_interrupted_output()]), RUNNING))
            return self._db.execute("UPDATE sessions SET state = ? WHERE state = ?", (PAUSED, RUNNING)).rowcount

    def sessions(self) -> Iterator[SessionRecord]:
        with self._lock:
            rows = self._db.execute("SELECT id, owner, state, created_at, last_active_at, execution_count, idle_timeout, "
                                    "limits, env, tools, snapshot, environment, network FROM sessions").fetchall()
        for row in rows:
            yield _record(row)

    # ---- sessions --------------------------------------------------------------

    def add(self, record: SessionRecord) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO sessions (id, owner, state, created_at, last_active_at, execution_count, idle_timeout, "
                "limits, env, tools, snapshot, environment, network) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.owner, record.state, record.created_at, record.last_active_at, record.execution_count,
                 record.idle_timeout, json.dumps(record.limits), json.dumps(record.env),
                 None if record.tools is None else json.dumps(record.tools),
                 None if record.snapshot is None else json.dumps(record.snapshot), record.environment,
                 None if record.network is None else json.dumps(record.network)))

    def update(self, session_id: str, **changes: Any) -> None:
        """Set some of a session's columns (``snapshot`` and ``limits`` as JSON)."""
        columns = []
        values = []
        for name, value in changes.items():
            if name not in _UPDATABLE:
                raise ValueError(f"not a session column: {name}")
            columns.append(f"{name} = ?")
            values.append(json.dumps(value) if name in _JSON_COLUMNS and value is not None else value)
        with self._lock, self._db:
            self._db.execute(f"UPDATE sessions SET {', '.join(columns)} WHERE id = ?", (*values, session_id))  # noqa: S608

    def remove(self, session_id: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM cells WHERE session_id = ?", (session_id,))
            self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    # ---- cells -------------------------------------------------------------------

    def cell_started(self, session_id: str, execution_count: int, code: str) -> None:
        """A cell begins: recorded as running, so that a server dying under it leaves it marked."""
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO cells (session_id, execution_count, code, outputs, status) "
                             "VALUES (?, ?, ?, '[]', ?)", (session_id, execution_count, code, RUNNING))
            self._db.execute("UPDATE sessions SET execution_count = ?, last_active_at = ? WHERE id = ?",
                             (execution_count, time.time(), session_id))

    def cell_finished(self, session_id: str, execution_count: int, outputs: list[dict[str, Any]], status: str) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE cells SET outputs = ?, status = ? WHERE session_id = ? AND execution_count = ?",
                             (json.dumps(outputs), status, session_id, execution_count))
            self._db.execute("UPDATE sessions SET last_active_at = ? WHERE id = ?", (time.time(), session_id))

    def cells(self, session_id: str) -> list[CellRecord]:
        with self._lock:
            rows = self._db.execute("SELECT execution_count, code, outputs, status FROM cells WHERE session_id = ? "
                                    "ORDER BY execution_count", (session_id,)).fetchall()
        found = []
        for count, code, outputs, status in rows:
            try:
                parsed = json.loads(outputs)
                if not isinstance(parsed, list):
                    raise ValueError("not a list")
            except ValueError:
                parsed = [{"output_type": "stream", "name": "stderr", "text": "(this cell's outputs were damaged on disk)\n"}]
            found.append(CellRecord(int(count), str(code), parsed, str(status)))
        return found

    def copy_cells(self, source_id: str, target_id: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT INTO cells (session_id, execution_count, code, outputs, status) "
                             "SELECT ?, execution_count, code, outputs, status FROM cells WHERE session_id = ?",
                             (target_id, source_id))

    def add_cells(self, session_id: str, cells: list[CellRecord]) -> None:
        with self._lock, self._db:
            self._db.executemany("INSERT INTO cells (session_id, execution_count, code, outputs, status) VALUES (?, ?, ?, ?, ?)",
                                 [(session_id, c.execution_count, c.code, json.dumps(c.outputs), c.status) for c in cells])


_UPDATABLE = frozenset({"owner", "state", "last_active_at", "execution_count", "idle_timeout", "limits", "snapshot"})
_JSON_COLUMNS = frozenset({"limits", "snapshot"})


def _interrupted_output() -> dict[str, Any]:
    return {"output_type": "error", "ename": "SessionInterrupted", "evalue": "the server restarted while this cell ran",
            "traceback": ["SessionInterrupted: the server restarted while this cell ran"]}


def _names(name: str, value: list[Any] | None, damaged: list[str]) -> list[str] | None:
    """A list of strings, or None (named in ``damaged``) when any item is not one: a damaged policy grants nothing."""
    if value is None or all(isinstance(item, str) for item in value):
        return value
    damaged.append(name)
    return None


def _record(row: tuple[Any, ...]) -> SessionRecord:
    """A row as a record; a damaged column comes back as its default and is named in ``damaged``."""
    (session_id, owner, state, created_at, last_active_at, execution_count, idle_timeout,
     limits, env, tools, snapshot, environment, network) = row
    damaged: list[str] = []

    def parsed(name: str, text: Any, kind: type, default: Any) -> Any:
        if text is None:
            return default
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, kind):
            damaged.append(name)
            return default
        return value

    def number(name: str, value: Any, default: float) -> float:
        if isinstance(value, int | float):
            return float(value)
        damaged.append(name)
        return default

    now = time.time()
    record = SessionRecord(
        id=str(session_id), owner=str(owner), state=PAUSED if state != RUNNING else RUNNING,
        created_at=number("created_at", created_at, now), last_active_at=number("last_active_at", last_active_at, now),
        execution_count=int(number("execution_count", execution_count, 0)),
        idle_timeout=number("idle_timeout", idle_timeout, 600.0),
        limits=parsed("limits", limits, dict, {}), env=parsed("env", env, dict, {}),
        tools=parsed("tools", tools, list, None),
        snapshot=parsed("snapshot", snapshot, dict, None),
        environment=str(environment) if environment else "default",
        network=_names("network", parsed("network", network, list, None), damaged), damaged=damaged)
    return record
