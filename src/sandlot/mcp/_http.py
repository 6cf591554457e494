"""``/mcp`` on the main server: the tools over MCP's streamable HTTP transport.

It shares the server's engine, API keys and per-key quotas: a key's sessions
are the same whether opened here or at ``/v1/sessions``, and another key gets
"no session" for them. A request without a valid key gets the contract's 401
before the MCP layer sees it.

MCP sessions: a client that opens one (the ``initialize`` handshake) gets an
``Mcp-Session-Id``; the sandlot sessions it creates are closed when that MCP
session ends, that is when the client deletes it or the server answers that it
no longer exists (it idled out). They also have sandlot's own idle timeout,
which is the only cleanup for clients of the session-less 2026 protocol.
"""

from __future__ import annotations

import json
import logging
from contextlib import AbstractAsyncContextManager

import anyio
from fastapi import FastAPI
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from .._errors import AuthenticationError
from ..server.config import is_loopback
from ..server.state import ServerState
from ._tools import SandlotTools, http_caller

log = logging.getLogger("sandlot.mcp")

SESSION_HEADER = "mcp-session-id"


class McpHttpEndpoint:
    """A pure ASGI endpoint: authenticate, then hand the request to the SDK's session manager."""

    def __init__(self, state: ServerState, path: str = "/mcp") -> None:
        self.path = path
        self._state = state
        self.tools = SandlotTools(state.engine, http_caller, state=state)
        self.manager = StreamableHTTPSessionManager(
            app=self.tools.server(),
            security_settings=_transport_security(state.config.host),
            max_request_body_size=state.config.max_request_bytes,
            # An MCP session lasts as long as a sandlot session would without calls.
            session_idle_timeout=state.engine.config.session_idle_timeout,
        )

    def running(self) -> AbstractAsyncContextManager[None]:
        return self.manager.run()

    def mount(self, app: FastAPI) -> None:
        app.router.routes.append(Route(self.path, endpoint=self, include_in_schema=False))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        try:
            who = self._state.auth.principal(headers.get("authorization"))
        except AuthenticationError as exc:
            await _error(send, 401, "unauthorized", str(exc), {"www-authenticate": "Bearer"})
            return
        scope.setdefault("state", {})["principal"] = who
        if self._state.draining:
            await _error(send, 503, "unavailable", "the server is shutting down")
            return
        # The SDK binds each MCP session to the identity that opened it: another key gets 404 for it.
        scope["user"] = AuthenticatedUser(AccessToken(token=who, client_id=who, scopes=[]))
        client = headers.get(SESSION_HEADER)
        status: int | None = None

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.manager.handle_request(scope, receive, watched_send)
        finally:
            ended = status is not None and (status == 404 or (scope["method"] == "DELETE" and status < 300))
            if client and ended:
                with anyio.CancelScope(shield=True):
                    await self.tools.client_gone(who, client)


def _transport_security(host: str) -> TransportSecuritySettings:
    """On loopback, refuse Host and Origin headers of other names (DNS rebinding: a web page whose
    name resolves to 127.0.0.1 must not reach a server that has no keys). Beyond loopback, API keys
    are required, and the names the server is reached by cannot be known here."""
    if not is_loopback(host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = ["127.0.0.1", "localhost", "[::1]"]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                     allowed_hosts=[f"{name}:*" for name in names] + names,
                                     allowed_origins=[f"http://{name}:*" for name in names] + [f"http://{n}" for n in names])


async def _error(send: Send, status: int, error_type: str, message: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": {"type": error_type, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
