"""sandlot's exceptions: one root, each leaf says when it is raised.

An exception in *user code* is never one of these: it is data in the
``ExecutionResult`` (``status="error"``). These are infrastructure failures.
Each class carries the HTTP status and the CLI exit code it maps to, so the
server and the CLI need no special cases.

    SandlotError
    ├── SetupError               the host cannot give the isolation asked for
    ├── AuthenticationError      a missing or wrong API key (server and client)
    ├── UnavailableError         the server is shutting down or unreachable (client)
    │   ├── RequestTimeoutError  the client gave up waiting for an answer
    │   ├── RestartingError      the zygote died or stalled under a request and is restarting (retry)
    │   │   └── NodeLostError    cluster mode: the node running the request died (retry)
    │   └── ResourceExhaustedError   the host ran out of disk, processes, memory or fds for a sandbox (retry)
    ├── SandboxError             one sandbox failed (not the user's code)
    │   ├── SpawnError           a sandbox could not start or contain itself
    │   └── ProtocolError        a sandbox broke the channel protocol
    ├── UpstreamError            the upstream model failed or refused (agent endpoint)
    │   └── UpstreamTimeoutError the upstream model did not answer in time
    ├── CapacityError            no capacity left right now (retry later)
    ├── ClosedError              you used something after closing it
    ├── NotFoundError            no such session or file
    ├── InvalidRequestError      a request is malformed (bad path, bad limits)
    └── TooLargeError            code or upload over its size limit
"""

from __future__ import annotations


class SandlotError(Exception):
    """Root of every sandlot infrastructure error."""

    http_status = 500
    error_type = "internal_error"
    exit_code = 1


class SetupError(SandlotError):
    """The host cannot provide what the configuration asks for (for example
    ``isolation="strict"`` without namespaces, or no seccomp library)."""

    http_status = 503
    error_type = "setup_error"
    exit_code = 3


class AuthenticationError(SandlotError):
    """A request had no API key, or a wrong one."""

    http_status = 401
    error_type = "unauthorized"
    exit_code = 5


class UnavailableError(SandlotError):
    """The server is shutting down, or could not be reached."""

    http_status = 503
    error_type = "unavailable"
    exit_code = 6


class RequestTimeoutError(UnavailableError):
    """The client stopped waiting for the server's answer (not a run's own timeout, which is data)."""

    error_type = "request_timeout"


class RestartingError(UnavailableError):
    """The zygote died or stalled while a request needed it; the engine is starting a new one.

    Only the requests in flight at that moment get this; retry after ``retry_after`` seconds.
    A session whose interpreter was lost comes back on its next call (``restarted: true``)."""

    error_type = "restarting"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NodeLostError(RestartingError):
    """Cluster mode: the Ray node that ran the request died under it (``sandlot.cluster``).

    A one-shot run is not retried for you (its code may have had effects): retry after ``retry_after``.
    A session is restored on another node from its last saved state; the message says what was lost."""

    error_type = "node_lost"


class ResourceExhaustedError(UnavailableError):
    """The host ran out of something a new sandbox needs: room on the state directory's disk,
    processes or memory (the server's own cgroup limits, or the system's), file descriptors.

    Not the request's fault and not for good: retry after ``retry_after`` seconds; ``/healthz``
    says what ran out while it lasts."""

    error_type = "resource_exhausted"

    def __init__(self, message: str, retry_after: float = 2.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SandboxError(SandlotError):
    """A sandbox failed for a reason that is not the user's code."""

    http_status = 500
    error_type = "sandbox_error"


class SpawnError(SandboxError):
    """A sandbox could not be started or could not contain itself."""

    error_type = "spawn_error"


class ProtocolError(SandboxError):
    """A sandbox sent frames that break the channel protocol."""

    error_type = "protocol_error"


class UpstreamError(SandlotError):
    """The upstream model failed, could not be reached, or refused the request."""

    http_status = 502
    error_type = "upstream_error"
    exit_code = 7


class UpstreamTimeoutError(UpstreamError):
    """The upstream model did not answer in time."""

    http_status = 504
    error_type = "upstream_timeout"


class CapacityError(SandlotError):
    """No sandbox capacity is left right now; retry after ``retry_after`` seconds."""

    http_status = 429
    error_type = "capacity"
    exit_code = 4

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClosedError(SandlotError):
    """The engine, session or sandbox was closed by its owner and cannot be used."""

    http_status = 409
    error_type = "closed"


class NotFoundError(SandlotError):
    """No session or file by that name."""

    http_status = 404
    error_type = "not_found"
    exit_code = 2


class InvalidRequestError(SandlotError):
    """The request itself is invalid: a path leaving the workspace, limits out of range."""

    http_status = 400
    error_type = "invalid_request"
    exit_code = 2


class TooLargeError(SandlotError):
    """Code or an upload is over its size limit."""

    http_status = 413
    error_type = "too_large"
    exit_code = 2
