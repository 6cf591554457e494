"""Structured logs: one JSON line per request and per run, with ids and durations."""

from __future__ import annotations

import json
import logging
import sys
import time
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
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("sandlot")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def log_request(method: str, path: str, status: int, started: float, principal: str | None) -> None:
    request_log.info("request", extra={"fields": {
        "method": method, "path": path, "status": status, "principal": principal,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3)}})


def log_run(kind: str, result_id: str, status: str, duration_ms: float, session_id: str | None = None) -> None:
    run_log.info("run", extra={"fields": {"kind": kind, "id": result_id, "status": status,
                                          "session": session_id, "duration_ms": duration_ms}})
