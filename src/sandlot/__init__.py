"""sandlot: a self-hosted code-execution server for AI agents.

Untrusted Python runs in kernel-isolated sandboxes forked from a warm zygote.
In-process: ``Engine`` is the async core and ``Sandlot`` its blocking face.
Against a server: ``Client`` and ``AsyncClient``. Names load on first use, so
importing the client does not load the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AsyncClient": "sandlot.client",
    "AuthenticationError": "sandlot._errors",
    "CapacityError": "sandlot._errors",
    "Client": "sandlot.client",
    "ClosedError": "sandlot._errors",
    "CommandResult": "sandlot._models",
    "DisplayData": "sandlot._models",
    "Engine": "sandlot.engine",
    "EngineConfig": "sandlot._config",
    "ErrorOutput": "sandlot._models",
    "ExecuteResult": "sandlot._models",
    "ExecutionError": "sandlot._models",
    "ExecutionResult": "sandlot._models",
    "InvalidRequestError": "sandlot._errors",
    "Limits": "sandlot._config",
    "NotFoundError": "sandlot._errors",
    "ProtocolError": "sandlot._errors",
    "RequestTimeoutError": "sandlot._errors",
    "ResourceExhaustedError": "sandlot._errors",
    "RestartingError": "sandlot._errors",
    "SandboxError": "sandlot._errors",
    "SandlotError": "sandlot._errors",
    "Sandlot": "sandlot.engine",
    "Session": "sandlot.engine",
    "SetupError": "sandlot._errors",
    "SpawnError": "sandlot._errors",
    "StreamOutput": "sandlot._models",
    "SyncSession": "sandlot.engine",
    "TooLargeError": "sandlot._errors",
    "ToolCallRecord": "sandlot._models",
    "UnavailableError": "sandlot._errors",
    "UpstreamError": "sandlot._errors",
    "UpstreamTimeoutError": "sandlot._errors",
    "Usage": "sandlot._models",
}

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "CapacityError",
    "Client",
    "ClosedError",
    "CommandResult",
    "DisplayData",
    "Engine",
    "EngineConfig",
    "ErrorOutput",
    "ExecuteResult",
    "ExecutionError",
    "ExecutionResult",
    "InvalidRequestError",
    "Limits",
    "NotFoundError",
    "ProtocolError",
    "RequestTimeoutError",
    "ResourceExhaustedError",
    "RestartingError",
    "SandboxError",
    "Sandlot",
    "SandlotError",
    "Session",
    "SetupError",
    "SpawnError",
    "StreamOutput",
    "SyncSession",
    "TooLargeError",
    "ToolCallRecord",
    "UnavailableError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "Usage",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sandlot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from ._config import EngineConfig, Limits
    from ._errors import (
        AuthenticationError,
        CapacityError,
        ClosedError,
        InvalidRequestError,
        NotFoundError,
        ProtocolError,
        RequestTimeoutError,
        ResourceExhaustedError,
        RestartingError,
        SandboxError,
        SandlotError,
        SetupError,
        SpawnError,
        TooLargeError,
        UnavailableError,
        UpstreamError,
        UpstreamTimeoutError,
    )
    from ._models import (
        CommandResult,
        DisplayData,
        ErrorOutput,
        ExecuteResult,
        ExecutionError,
        ExecutionResult,
        StreamOutput,
        ToolCallRecord,
        Usage,
    )
    from .client import AsyncClient, Client
    from .engine import Engine, Sandlot, Session, SyncSession
