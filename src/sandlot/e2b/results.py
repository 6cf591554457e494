"""Rich outputs as E2B's ``result`` events: a MIME bundle's types under E2B's field names.

E2B's code interpreter sends one ``result`` per display (``is_main_result`` false) and one for the value of the
cell's last expression (``is_main_result`` true), with each representation under a short name (``text``,
``html``, ``png``…). A MIME type with no E2B name travels in ``extra``, keyed by its MIME type, so nothing the
sandbox produced is dropped.
"""

from __future__ import annotations

from typing import Any

from .._models import DisplayData, ErrorOutput, ExecuteResult, ExecutionError

E2B_FIELDS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
}


def result_event(output: DisplayData | ExecuteResult) -> dict[str, Any]:
    """An E2B ``result`` event for a display or an execute result."""
    event: dict[str, Any] = {"type": "result", "is_main_result": isinstance(output, ExecuteResult)}
    extra: dict[str, Any] = {}
    for mime, value in output.data.items():
        name = E2B_FIELDS.get(mime)
        if name is None:
            extra[mime] = value
        else:
            event[name] = "".join(value) if isinstance(value, list) else value
    if extra:
        event["extra"] = extra
    return event


def error_event(error: ErrorOutput | ExecutionError) -> dict[str, Any]:
    """An E2B ``error`` event: the exception's name, value and its traceback as one text."""
    return {"type": "error", "name": error.ename, "value": error.evalue, "traceback": "\n".join(error.traceback)}
