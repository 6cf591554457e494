"""A server span per HTTP request: pure ASGI, outermost, added only while tracing is on.

The client's W3C ``traceparent`` (and ``tracestate``, ``baggage``: whatever
``OTEL_PROPAGATORS`` names) becomes the span's parent. The span is named for the route's
template (``POST /v1/sessions/{session_id}/execute``), never the raw path, and ends when
the response has been sent in full, or the client went away: a stream's span lasts as
long as the stream.
"""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..server.middleware import KNOWN_METHODS


class TracingMiddleware:
    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            key = name.decode("latin-1")
            headers[key] = headers[key] + "," + value.decode("latin-1") if key in headers else value.decode("latin-1")
        method = scope.get("method", "")
        method = method if method in KNOWN_METHODS else "_OTHER"
        attributes: dict[str, str | int] = {"http.request.method": method, "url.path": scope.get("path", ""),
                                            "url.scheme": scope.get("scheme", "http")}
        if scope.get("client"):
            attributes["client.address"] = scope["client"][0]
        if scope.get("server"):
            attributes["server.address"], attributes["server.port"] = scope["server"][0], scope["server"][1]
        if "user-agent" in headers:
            attributes["user_agent.original"] = headers["user-agent"][:200]
        status: list[int] = []

        async def traced_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        name = "HTTP" if method == "_OTHER" else method
        with self.tracer.start_as_current_span(name, context=propagate.extract(headers),
                                               kind=SpanKind.SERVER, attributes=attributes) as span:
            try:
                await self.app(scope, receive, traced_send)
            finally:
                template = getattr(scope.get("route"), "path", None)
                if isinstance(template, str):
                    span.update_name(f"{name} {template}")
                    span.set_attribute("http.route", template)
                if status:
                    span.set_attribute("http.response.status_code", status[0])
                    if status[0] >= 500:
                        span.set_attribute("error.type", str(status[0]))
                        span.set_status(Status(StatusCode.ERROR))
