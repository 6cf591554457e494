"""The one seam where HTTP answers and httpx failures become sandlot's exceptions.

The client raises the same tree the server raises (``sandlot._errors``), so a
caller catches ``NotFoundError`` whether it uses the engine in-process or a
server over HTTP. The class comes from the HTTP status; the contract's
``error.type`` word only refines it, to a subclass of that class (a 500
``spawn_error`` is a ``SpawnError``, still a ``SandboxError``) or to a class
that carries that very status (a 503 ``setup_error`` is a ``SetupError``).
An unknown word, or a status from something in front of sandlot (a proxy's
502), falls back to the status's class. Inside a stream there is no status,
so the word decides.

Transport failures: a timeout is ``RequestTimeoutError``, anything else that
kept the answer from arriving is ``UnavailableError``; both keep the httpx
exception as their ``__cause__``.
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Iterator
from typing import Any

import httpx

from .. import _errors as tree
from .._errors import (
    AuthenticationError,
    CapacityError,
    ClosedError,
    InvalidRequestError,
    NotFoundError,
    RequestTimeoutError,
    ResourceExhaustedError,
    RestartingError,
    SandboxError,
    SandlotError,
    TooLargeError,
    UnavailableError,
)

_BY_STATUS: dict[int, type[SandlotError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ClosedError,
    413: TooLargeError,
    429: CapacityError,
    500: SandboxError,
    # A reverse proxy in front of sandlot says 502/504 when sandlot itself is down or stuck.
    502: UnavailableError,
    503: UnavailableError,
    504: UnavailableError,
}
# Every class of the tree, by its contract word, so a leaf added there is understood here too.
_BY_TYPE: dict[str, type[SandlotError]] = {
    cls.error_type: cls for cls in vars(tree).values()
    if isinstance(cls, type) and issubclass(cls, SandlotError) and cls is not SandlotError}
DEFAULT_RETRY_AFTER = 1.0


def error_class(status: int | None, error_type: str) -> type[SandlotError]:
    """The exception for an error answer: by ``status``, narrowed by the ``error_type`` word."""
    named = _BY_TYPE.get(error_type)
    if status is None:
        return named or SandboxError
    by_status = _BY_STATUS.get(status)
    if by_status is None:
        by_status = SandboxError if status >= 500 else InvalidRequestError if status >= 400 else SandlotError
    if named is not None and (issubclass(named, by_status) or named.http_status == status):
        return named
    return by_status


def make_error(cls: type[SandlotError], message: str, retry_after: float | None = None) -> SandlotError:
    if issubclass(cls, (CapacityError, ResourceExhaustedError, RestartingError)):
        return cls(message, retry_after=DEFAULT_RETRY_AFTER if retry_after is None else retry_after)
    return cls(message)


def error_from_response(response: httpx.Response) -> SandlotError:
    """The exception for a non-2xx answer (its body must already be read)."""
    error_type, message = _error_body(response)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    return make_error(error_class(response.status_code, error_type), message, retry_after)


def error_from_event(body: Any) -> SandlotError:
    """The exception for an ``error`` event that carries ``{"error": {...}}``: the server failed mid-stream."""
    error_type, message = _type_and_message(body)
    return make_error(error_class(None, error_type), message or "the server failed during the run")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def unreadable(what: str, exc: BaseException | None = None) -> SandlotError:
    """The error for a 2xx answer this client cannot read: a wrong URL, a proxy, or a server of another version."""
    detail = f": {exc}" if exc is not None else ""
    return SandlotError(f"the server sent {what} this client cannot read{detail}")


@contextlib.contextmanager
def transport_errors(base_url: str) -> Iterator[None]:
    """Translate httpx's transport failures inside the block (they always keep their cause)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise RequestTimeoutError(f"gave up waiting for the server at {base_url} ({type(exc).__name__})") from exc
    except httpx.ConnectError as exc:
        raise UnavailableError(f"could not reach the server at {base_url}: {exc}") from exc
    except httpx.TransportError as exc:
        raise UnavailableError(f"lost the connection to the server at {base_url}: {str(exc) or type(exc).__name__}") from exc


def _error_body(response: httpx.Response) -> tuple[str, str]:
    try:
        error_type, message = _type_and_message(response.json().get("error"))
    except (ValueError, AttributeError):
        error_type, message = "", ""
    if not message:
        # Not the contract's shape: perhaps a proxy's page. Say what came back, briefly.
        snippet = response.text[:200].strip()
        message = f"HTTP {response.status_code} {response.reason_phrase}" + (f": {snippet}" if snippet else "")
    return error_type, message


def _type_and_message(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        return "", ""
    error_type, message = body.get("type"), body.get("message")
    return (error_type if isinstance(error_type, str) else "", message if isinstance(message, str) else "")
