"""Structured logs: one JSON line per request and per run, with ids and durations.

The lines are formatted and written by a thread of their own (``sandlot-log``): a request's
handler only puts its record on a queue, so JSON encoding and the write to stderr happen while
the event loop waits for sandboxes, not on a request's path; and a stderr that cannot take more
(a full pipe nobody reads) stalls the log thread, not the server. The queue holds at most
``QUEUED_LINES`` lines; past that, lines are dropped (and counted in ``dropped``) rather than
memory grown. It is emptied when the process exits normally; a ``kill -9`` loses the lines still in it.
"""

from __future__ import annotations

import atexit
import copy
import json
import logging
import queue
import sys
import threading
import time
from logging.handlers import QueueHandler
from typing import Any

request_log = logging.getLogger("sandlot.request")
run_log = logging.getLogger("sandlot.run")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"ts": round(record.created, 3), "level": record.levelname.lower(),
                                "logger": record.name, "msg": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, default=str)


QUEUED_LINES = 10_000
dropped = 0
"""Lines not logged because the queue was full."""


class _Handoff(QueueHandler):
    """Puts a record on the queue as it is, but for its message and traceback, made text now.

    (``QueueHandler`` would format the whole line here, on the caller's thread, which is what the
    queue is for avoiding; a traceback's frames and a message's arguments must not be read later.)
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        global dropped
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            dropped += 1


_TRACEBACKS = logging.Formatter()
_STOP = None
_thread: tuple[threading.Thread, queue.Queue[logging.LogRecord | None], logging.Handler] | None = None


def configure(level: str) -> None:
    """The ``sandlot`` loggers write JSON lines to stderr at ``level``, from the log thread."""
    global _thread
    stop()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    records: queue.Queue[logging.LogRecord | None] = queue.Queue(QUEUED_LINES)
    # A daemon: a stderr that takes nothing more must not keep the process from exiting.
    thread = threading.Thread(target=_write, args=(records, handler), name="sandlot-log", daemon=True)
    thread.start()
    _thread = (thread, records, handler)
    root = logging.getLogger("sandlot")
    root.handlers[:] = [_Handoff(records)]
    root.setLevel(level.upper())
    root.propagate = False


def _write(records: queue.Queue[logging.LogRecord | None], handler: logging.Handler) -> None:
    while (record := records.get()) is not _STOP:
        assert record is not None
        handler.handle(record)


@atexit.register
def stop(timeout: float = 5.0) -> None:
    """Write what is queued (waiting up to ``timeout`` seconds) and end the log thread: at exit, or
    before ``configure`` again. What is logged after that is written at once, as the call is made."""
    global _thread
    if _thread is None:
        return
    thread, records, handler = _thread
    _thread = None
    logging.getLogger("sandlot").handlers[:] = [handler]
    try:
        records.put(_STOP, timeout=timeout)
    except queue.Full:
        return  # the thread is stuck on a stderr that takes nothing more
    thread.join(timeout)


def log_request(method: str, path: str, status: int, started: float, principal: str | None) -> None:
    request_log.info("request", extra={"fields": {
        "method": method, "path": path, "status": status, "principal": principal,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3)}})


def log_run(kind: str, result_id: str, status: str, duration_ms: float, session_id: str | None = None) -> None:
    run_log.info("run", extra={"fields": {"kind": kind, "id": result_id, "status": status,
                                          "session": session_id, "duration_ms": duration_ms}})
