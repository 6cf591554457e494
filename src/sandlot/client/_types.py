"""The client's own small result types; run results reuse ``sandlot._models``.

``StreamEvent`` is one Server-Sent Event of a streaming run, already parsed
into the same typed objects a finished result holds, so code that handles a
stream and code that handles a result look alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

#: ``on_event(event_name, data)``: called for each event of a streaming run, as it arrives.
EventCallback = Callable[[str, Any], None]
#: The async client also accepts a coroutine function, and awaits it before reading on.
AsyncEventCallback = Callable[[str, Any], "Awaitable[None] | None"]


@dataclass(frozen=True)
class StreamEvent:
    """One event of a streaming run.

    ``event`` is the SSE event name and ``data`` its parsed payload:

    - ``stdout`` / ``stderr``: a ``StreamOutput`` (``.name``, ``.text``)
    - ``output``: a ``DisplayData`` or ``ExecuteResult`` (nbformat)
    - ``error``: an ``ErrorOutput``, the exception that ended the user's cell (data, not a raised error)
    - ``done``: the complete ``ExecutionResult``; always the last event

    Events this client does not know (from a newer server) pass through with their raw JSON as ``data``.
    """

    event: str
    data: Any


class SessionInfo(BaseModel):
    """A session as the server describes it (``GET /v1/sessions/{id}``)."""

    id: str
    created_at: datetime
    expires_at: datetime
    """When it changes state if unused: a running session is paused, a paused one deleted."""
    execution_count: int
    state: Literal["running", "paused"] = "running"
    last_active_at: datetime | None = None
    environment: str = "default"
    """The environment its interpreters run in (docs/environments.md)."""
    network: dict[str, list[str]] | None = None
    """Its egress policy when it was made with network: ``{"allow": [...], "dropped": [...]}`` (``dropped``: what it
    was granted that the server no longer allows, after a restart with a narrower allow list)."""


class FileInfo(BaseModel):
    """One file in a session's workspace (``GET /v1/sessions/{id}/files``)."""

    path: str
    size: int
    modified_at: datetime
