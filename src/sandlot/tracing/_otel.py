"""The SDK side of tracing: imported only once ``configure()`` turned tracing on.

One ``TracerProvider`` of sandlot's own, not the global one: a host program's provider is
left alone, and FastAPI's built-in instrumentation (which follows the global provider) does
not add a second span per request beside ours.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.applications import Starlette

from .. import __version__
from .._errors import SandlotError
from . import RUN_SPAN, AttributeValue

log = logging.getLogger("sandlot")
_KINDS = {"internal": SpanKind.INTERNAL, "server": SpanKind.SERVER, "client": SpanKind.CLIENT}


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()] or ["otlp"]
    found: list[SpanExporter] = []
    for name in dict.fromkeys(names):
        if name == "otlp":
            protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                        or "http/protobuf").strip()
            if protocol != "http/protobuf":
                log.warning("sandlot: OTLP protocol %r is not supported; traces go over http/protobuf", protocol)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            found.append(OTLPSpanExporter())  # endpoint, headers, timeout, compression: from OTEL_EXPORTER_OTLP_*
        elif name == "console":
            found.append(ConsoleSpanExporter())
        elif name != "none":
            log.warning("sandlot: OTEL_TRACES_EXPORTER %r is not supported (otlp, console, none)", name)
    return found


class Tracing:
    """sandlot's tracer provider and tracer, and the live versions of the face's calls."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("sandlot", __version__)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Tracing:
        resource = Resource.create({"service.version": __version__})  # + OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": "sandlot"}))
        provider = TracerProvider(resource=resource)  # sampler and span limits: from OTEL_TRACES_SAMPLER etc.
        for exporter in _exporters(environ):
            provider.add_span_processor(BatchSpanProcessor(exporter))  # OTEL_BSP_* for its delays and sizes
        log.info("sandlot: tracing on (service %s)", resource.attributes.get("service.name"))
        return cls(provider)

    def shutdown(self) -> None:
        self.provider.shutdown()

    def span(self, name: str, attributes: Mapping[str, AttributeValue | None] | None, kind: str) -> LiveSpan:
        return LiveSpan(self.tracer, name, attributes, _KINDS[kind])

    def note(self, key: str, value: AttributeValue | None) -> None:
        if value is not None:
            trace.get_current_span().set_attribute(key, value)

    def note_elapsed(self, key: str) -> None:
        current = trace.get_current_span()
        started = current.start_time if isinstance(current, SdkSpan) else None
        if started is not None:
            current.set_attribute(key, round((time.time_ns() - started) / 1e6, 3))

    def inject(self, headers: dict[str, str]) -> None:
        propagate.inject(headers)

    async def traced_run(self, method: Callable[..., Coroutine[Any, Any, Any]], kind: str, figures: bool,
                         args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        owner = args[0]
        attributes: dict[str, AttributeValue | None] = {"sandlot.run.kind": kind}
        if kind == "session":
            attributes["sandlot.session.id"] = getattr(owner, "id", None)
        with self.span(RUN_SPAN, attributes, "internal") as span:
            result = await method(*args, **kwargs)
            usage = getattr(result, "usage", None)
            span.set_many({
                "sandlot.run.id": result.id, "sandlot.status": result.status,
                "sandlot.cell_ms": result.duration_ms, "sandlot.execution_count": result.execution_count,
                "sandlot.cpu_ms": usage.cpu_ms if usage is not None else None,
                "sandlot.peak_memory_bytes": usage.peak_memory_bytes if usage is not None else None,
                "sandlot.truncated": result.truncated, "sandlot.restarted": result.restarted,
                "sandlot.tool_calls": len(result.tool_calls),
            })
            if figures:
                with contextlib.suppress(Exception):  # figures are a bonus: never fail a run over them
                    span.set_many({f"sandlot.live.{k}": v for k, v in owner.live_figures().items()
                                   if isinstance(v, (bool, int, float))})
            return result

    async def timed(self, method: Callable[..., Coroutine[Any, Any, Any]], key: str, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        current = trace.get_current_span()
        began = time.time_ns()
        if isinstance(current, SdkSpan) and current.name == RUN_SPAN and current.start_time is not None \
                and "sandlot.queue_wait_ms" not in (current.attributes or {}):
            current.set_attribute("sandlot.queue_wait_ms", round((began - current.start_time) / 1e6, 3))
        try:
            return await method(*args, **kwargs)
        finally:
            current.set_attribute(key, round((time.time_ns() - began) / 1e6, 3))

    def install_http(self, app: Starlette) -> None:
        from ._asgi import TracingMiddleware

        app.add_middleware(TracingMiddleware, tracer=self.tracer)


class LiveSpan:
    """A span current for the length of a ``with`` block."""

    __slots__ = ("_manager", "_span")

    def __init__(self, tracer: trace.Tracer, name: str, attributes: Mapping[str, AttributeValue | None] | None,
                 kind: SpanKind) -> None:
        clean = {k: v for k, v in (attributes or {}).items() if v is not None}
        self._manager = tracer.start_as_current_span(name, kind=kind, attributes=clean, record_exception=True,
                                                     set_status_on_exception=True)
        self._span: trace.Span = trace.INVALID_SPAN

    def __enter__(self) -> LiveSpan:
        self._span = self._manager.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool | None:
        if exc is not None:
            self._span.set_attribute("error.type", exc.error_type if isinstance(exc, SandlotError) else type(exc).__qualname__)
            if isinstance(exc, SandlotError):
                self._span.set_status(Status(StatusCode.ERROR, str(exc)[:500]))
        return self._manager.__exit__(kind, exc, tb)

    def set(self, key: str, value: AttributeValue | None) -> None:
        if value is not None:
            self._span.set_attribute(key, value)

    def set_many(self, attributes: Mapping[str, AttributeValue | None]) -> None:
        self._span.set_attributes({k: v for k, v in attributes.items() if v is not None})
