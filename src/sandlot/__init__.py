"""sandlot: a self-hosted code-execution server for AI agents.

Untrusted Python runs in kernel-isolated sandboxes forked from a warm zygote.
``Engine`` is the async core; ``Sandlot`` is its blocking face.
"""

from __future__ import annotations

from ._config import EngineConfig, Limits
from ._engine import Engine
from ._errors import (
    CapacityError,
    ClosedError,
    InvalidRequestError,
    NotFoundError,
    ProtocolError,
    SandboxError,
    SandlotError,
    SetupError,
    SpawnError,
    TooLargeError,
)
from ._models import (
    DisplayData,
    ErrorOutput,
    ExecuteResult,
    ExecutionError,
    ExecutionResult,
    StreamOutput,
    Usage,
)
from ._session import Session
from ._sync import Sandlot, SyncSession

__version__ = "0.1.0"

__all__ = [
    "CapacityError",
    "ClosedError",
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
    "SandboxError",
    "Sandlot",
    "SandlotError",
    "Session",
    "SetupError",
    "SpawnError",
    "StreamOutput",
    "SyncSession",
    "TooLargeError",
    "Usage",
]
