"""A Python client for a sandlot server, blocking (``Client``) and asyncio (``AsyncClient``).

    from sandlot.client import Client

    with Client("http://127.0.0.1:8765") as client:
        result = client.execute("print(6 * 7)")
        print(result.stdout)                      # "42\\n"
        with client.session() as session:        # state persists between cells
            session.execute("x = 1")
            session.execute("x + 1").outputs[0].data["text/plain"]   # "2"

Results are sandlot's own types (``ExecutionResult`` and the nbformat outputs);
failures raise sandlot's exception tree (``sandlot.SandlotError`` and its
leaves), the same classes the in-process engine raises. An exception in the
user's code is not one of them: it is data (``result.status == "error"``).
"""

from __future__ import annotations

from .._errors import (
    AuthenticationError,
    CapacityError,
    ClosedError,
    InvalidRequestError,
    NotFoundError,
    RequestTimeoutError,
    SandboxError,
    SandlotError,
    TooLargeError,
    UnavailableError,
)
from .._models import CommandResult, DisplayData, ErrorOutput, ExecuteResult, ExecutionError, ExecutionResult, StreamOutput, Usage
from ._async import AsyncClient, AsyncClientSession, AsyncEventStream, SessionOpener
from ._sync import Client, ClientSession, EventStream
from ._types import FileInfo, SessionInfo, StreamEvent

__all__ = [
    "AsyncClient",
    "AsyncClientSession",
    "AsyncEventStream",
    "AuthenticationError",
    "CapacityError",
    "Client",
    "ClientSession",
    "ClosedError",
    "CommandResult",
    "DisplayData",
    "ErrorOutput",
    "EventStream",
    "ExecuteResult",
    "ExecutionError",
    "ExecutionResult",
    "FileInfo",
    "InvalidRequestError",
    "NotFoundError",
    "RequestTimeoutError",
    "SandboxError",
    "SandlotError",
    "SessionInfo",
    "SessionOpener",
    "StreamEvent",
    "StreamOutput",
    "TooLargeError",
    "UnavailableError",
    "Usage",
]
