"""Tracing with OpenTelemetry: off unless the standard ``OTEL_*`` environment turns it on.

The rest of sandlot calls only this face. While tracing is off (no trace exporter or OTLP
endpoint is set, or ``OTEL_SDK_DISABLED=true``), nothing of OpenTelemetry's SDK or exporter
is imported, and every call here is one check of a module global: a span is a shared no-op
object, a decorated method calls straight through to the method.

On (``configure()`` found an exporter, and the ``sandlot[otel]`` extra is installed), spans
go to ``opentelemetry-sdk``'s batch processor and from there over OTLP/HTTP (or to the
console, ``OTEL_TRACES_EXPORTER=console``). The SDK reads its own settings from the
environment: endpoint, headers, timeout, sampler, batch sizes, resource attributes. What
sandlot records, span by span, is in docs/tracing.md::

    POST /v1/chat/completions            the HTTP request (its parent: the client's traceparent)
    └── sandlot.agent                    the agent loop
        ├── sandlot.agent.turn           one model reply and the work it asked for
        │   ├── chat <model>             the upstream call (gen_ai.* attributes, tokens)
        │   ├── sandlot.agent.step       one code step
        │   │   └── sandlot.run          the cell in the engine (queue wait, take, cpu, memory, status)
        │   │       └── execute_tool <name>   a host tool the code called (traceparent sent on)
        │   └── execute_tool <name>      a host tool the model called directly
        └── ...
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from . import _otel

P = ParamSpec("P")
R = TypeVar("R")
AttributeValue = str | bool | int | float | list[str] | list[int] | list[float]
SpanKind = Literal["internal", "server", "client"]
log = logging.getLogger("sandlot")

RUN_SPAN = "sandlot.run"
"""The name of an engine run's span (one-shot or session cell)."""

_live: _otel.Tracing | None = None
"""The SDK side, once ``configure`` turned tracing on; None while it is off."""


class Span(Protocol):
    """What sandlot code may do with the span it is in: add attributes."""

    def set(self, key: str, value: AttributeValue | None) -> None:
        """Set one attribute (None: leave it unset)."""

    def set_many(self, attributes: Mapping[str, AttributeValue | None]) -> None:
        """Set several attributes (None values are left unset)."""


class _NoSpan:
    """The span while tracing is off: one shared object that does nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, key: str, value: AttributeValue | None) -> None:
        pass

    def set_many(self, attributes: Mapping[str, AttributeValue | None]) -> None:
        pass


_NO_SPAN = _NoSpan()


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces: an exporter other than ``none`` in
    ``OTEL_TRACES_EXPORTER``, or an OTLP endpoint, and not ``OTEL_SDK_DISABLED=true``."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {name.strip().lower() for name in env.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()}
    if exporters:
        return exporters != {"none"}
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip() or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip())


def configure(environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on if the environment asks for it (once per process); whether it is on.

    ``sandlot serve`` calls this when it builds its app; a program that uses ``Engine`` on its
    own calls it to get the engine's spans. Without the ``sandlot[otel]`` extra, a warning
    says so and tracing stays off."""
    global _live
    if _live is not None:
        return True
    if not wanted(environ):
        return False
    try:
        from . import _otel
    except ImportError as exc:
        log.warning("sandlot: OTEL_* asks for traces, but OpenTelemetry's SDK is not installed "
                    "(pip install 'sandlot[otel]'): tracing is off (%s)", exc)
        return False
    _live = _otel.Tracing.from_environment(os.environ if environ is None else environ)
    return True


def enabled() -> bool:
    return _live is not None


def shutdown() -> None:
    """Export what is still buffered and stop (tests; the SDK also does this at exit)."""
    global _live
    if _live is not None:
        _live.shutdown()
        _live = None


def span(name: str, attributes: Mapping[str, AttributeValue | None] | None = None, *,
         kind: SpanKind = "internal") -> AbstractContextManager[Span]:
    """A context manager: a span named ``name``, current inside the block, child of the current one.

    It yields a ``Span``. An exception leaving the block marks the span failed (with
    ``error.type``, a sandlot error's type)."""
    if _live is None:
        return _NO_SPAN
    return _live.span(name, attributes, kind)


def note(key: str, value: AttributeValue | None) -> None:
    """Set an attribute on the current span."""
    if _live is not None:
        _live.note(key, value)


def note_elapsed(key: str) -> None:
    """Set ``key`` on the current span to the milliseconds since that span began."""
    if _live is not None:
        _live.note_elapsed(key)


def inject(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with the current trace context added (W3C ``traceparent``, ``tracestate``)."""
    if _live is not None:
        _live.inject(headers)
    return headers


def traced_run(kind: Literal["execute", "session"], *, figures: bool = False,
               ) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Decorates the engine's run methods (``Engine.execute``, ``Session.execute``): a
    ``sandlot.run`` span around each call, with the result's status, times and usage; with
    ``figures``, the owner's ``live_figures()`` afterwards too. Off, the method is called as is."""
    def decorate(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
            if _live is None:
                return method(*args, **kwargs)
            return _live.traced_run(method, kind, figures, args, kwargs)
        return wrapper
    return decorate


def timed(key: str) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Decorates a step of a run (taking a sandbox): its milliseconds as attribute ``key`` of
    the current span; in a run's span, the time before the step began as ``sandlot.queue_wait_ms``."""
    def decorate(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
            if _live is None:
                return method(*args, **kwargs)
            return _live.timed(method, key, args, kwargs)
        return wrapper
    return decorate


def install_http(app: Starlette) -> None:
    """While tracing is on, give ``app`` a server span per HTTP request (the client's
    ``traceparent`` as its parent), as its outermost middleware. Call it after the app's other
    middleware is added."""
    if _live is not None:
        _live.install_http(app)


__all__ = ["RUN_SPAN", "Span", "configure", "enabled", "inject", "install_http", "note", "note_elapsed",
           "shutdown", "span", "timed", "traced_run", "wanted"]
