"""Server-Sent Events: lines in, typed ``StreamEvent`` objects out.

``SSEDecoder`` follows the WHATWG "event stream interpretation" rules for the
fields sandlot uses (``event:``, ``data:``; a blank line ends an event;
``:`` lines are comments). It is fed whole lines, so chunking is the line
reader's business: httpx's ``iter_lines`` keeps a partial line (and a partial
UTF-8 character) until the rest arrives. An event still open when the stream
ends is dropped, as the spec says: without its blank line it may be cut short.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .._errors import SandlotError, UnavailableError
from .._models import ErrorOutput, ExecutionResult, Output, StreamOutput
from ._errors import error_from_event, unreadable
from ._types import StreamEvent

SSE_MEDIA_TYPE = "text/event-stream"
_output: TypeAdapter[Output] = TypeAdapter(Output)


@dataclass(frozen=True)
class ServerSentEvent:
    """One raw event: its name (``message`` when unnamed) and its data lines joined by newlines."""

    event: str
    data: str


class SSEDecoder:
    """Feed it one line at a time (without its terminator); it returns an event at each blank line."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def decode(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._data:  # a blank line with no data dispatches nothing
                self._event = ""
                return None
            event = ServerSentEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        # "id" and "retry" mean nothing to a one-shot run; unknown fields are ignored, as the spec says.
        return None


def to_stream_event(raw: ServerSentEvent) -> StreamEvent:
    """Parse an event's JSON into sandlot's types; an ``error`` event that is the server's own failure raises."""
    try:
        payload = json.loads(raw.data)
    except ValueError as exc:
        raise unreadable(f"a {raw.event!r} event", exc) from exc
    if raw.event == "error" and isinstance(payload, dict) and "error" in payload and "ename" not in payload:
        # Not the user's exception (that is an nbformat error object) but the server's: the run is over.
        raise error_from_event(payload["error"])
    try:
        return StreamEvent(raw.event, _typed(raw.event, payload))
    except (ValidationError, KeyError, TypeError) as exc:
        raise unreadable(f"a {raw.event!r} event", exc) from exc


def _typed(event: str, payload: Any) -> Any:
    if event in ("stdout", "stderr"):
        return StreamOutput(name=event, text=payload["text"])
    if event == "output":
        return _output.validate_python(payload)
    if event == "error":
        return ErrorOutput.model_validate(payload)
    if event == "done":
        return ExecutionResult.model_validate(payload)
    return payload  # an event a newer server added: hand it over as it came


def to_batch_result(raw: ServerSentEvent) -> tuple[int, ExecutionResult] | None:
    """A streamed batch's event: ``(index, result)`` for a ``result``, None for the final ``done`` (its results
    were each given already) or an event a newer server added; an ``error`` event raises its error."""
    try:
        payload = json.loads(raw.data)
    except ValueError as exc:
        raise unreadable(f"a {raw.event!r} event", exc) from exc
    if raw.event == "error" and isinstance(payload, dict) and "error" in payload:
        raise error_from_event(payload["error"])
    if raw.event != "result":
        return None
    try:
        return int(payload["index"]), ExecutionResult.model_validate(payload["result"])
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        raise unreadable("a 'result' event", exc) from exc


def ended_early(base_url: str) -> SandlotError:
    """The stream closed without its ``done`` event: the server went away mid-run."""
    return UnavailableError(f"the stream from the server at {base_url} ended before the run finished")
