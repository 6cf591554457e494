"""The seam between E2B's SDKs and the server: which app answers a request, and who may send it.

With ``E2B_API_URL`` and ``E2B_SANDBOX_URL`` both set to the server's base URL, every E2B call arrives here:

- control-plane calls (``/sandboxes``, ``/v2/sandboxes``, templates, volumes) carry ``X-API-KEY`` and go to
  ``control``;
- in-sandbox calls carry ``E2b-Sandbox-Id`` and ``E2b-Sandbox-Port``: port 49983 (the daemon) goes to ``envd`` and
  the Connect services, port 49999 (the code interpreter) to ``interpreter``. A sandbox that is gone (killed,
  timed out, never existed) answers ``502``, as E2B's proxy does, which the SDKs read as "not running". The daemon
  wants the sandbox's ``X-Access-Token`` on every call; the interpreter wants it on ``/execute`` (the SDKs send it
  there, not on the context calls, which then need the sandbox id alone).

Everything else goes on to sandlot's own API untouched. The dispatcher sits inside the server's guards, so E2B
calls are size-capped, drained at shutdown, logged and counted like the rest.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import PlainTextResponse
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import AuthenticationError, InvalidRequestError, SandlotError, UnavailableError
from ..server.state import ServerState
from . import connect, control, envd, interpreter
from .errors import error_response
from .sandboxes import CHECKED_SANDBOX, E2BSandbox, Sandboxes

ENVD_PORT = "49983"
INTERPRETER_PORT = "49999"
SINGLE_HEADERS = ("e2b-sandbox-id", "e2b-sandbox-port", "x-access-token", "e2b-traffic-access-token")
"""Headers that decide which sandbox a call acts on and whether it may: sent twice, a call is refused, so no later
reader can pick a different copy from the one checked here."""
CONTROL_PREFIXES = ("/sandboxes", "/v2/sandboxes", "/templates", "/v2/templates", "/volumes", "/snapshots")


def install(app: FastAPI, state: ServerState) -> None:
    """Put the E2B face on the server's app (``sandlot serve --e2b``)."""
    registry = Sandboxes(state.engine)
    state.extras["e2b"] = registry
    app.add_middleware(E2BDispatch, state=state, registry=registry)


class E2BDispatch:
    def __init__(self, app: ASGIApp, *, state: ServerState, registry: Sandboxes) -> None:
        self.app = app
        self.state = state
        self.registry = registry
        self.control = Router(routes=control.routes)
        self.envd = Router(routes=envd.routes)
        self.interpreter = Router(routes=interpreter.routes)
        self.connect_apps = connect.applications(registry, state.quotas)
        state.engine.on_session_closed.append(self._session_closed)

    def _session_closed(self, session_id: str) -> None:
        self.registry.session_ended(session_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            if name in headers and name in SINGLE_HEADERS:
                error = InvalidRequestError(f"the {name} header may be sent only once")
                await error_response(error)(scope, receive, send)
                return
            headers[name] = raw_value.decode("latin-1")
        sandbox_id, port = headers.get("e2b-sandbox-id"), headers.get("e2b-sandbox-port")
        path: str = scope["path"]
        if sandbox_id is None and port is None:
            if any(path == p or path.startswith(p + "/") for p in CONTROL_PREFIXES):
                await self._answer(self.control, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        await self._in_sandbox(scope, receive, send, sandbox_id or "", port or "", headers)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def on_shutdown() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.registry.close()
            return message
        await self.app(scope, on_shutdown, send)

    async def _in_sandbox(self, scope: Scope, receive: Receive, send: Send, sandbox_id: str, port: str,
                          headers: dict[str, str]) -> None:
        if self.state.draining:
            await error_response(UnavailableError("the server is shutting down"))(scope, receive, send)
            return
        sandbox = self.registry.live.get(sandbox_id)
        if sandbox is None or sandbox.session.closed:
            await _gone(sandbox_id)(scope, receive, send)
            return
        path: str = scope["path"]
        if not _authorized(sandbox, port, headers.get("x-access-token"), headers.get("e2b-traffic-access-token")):
            error = AuthenticationError("the sandbox's access token (X-Access-Token, or E2B-Traffic-Access-Token for "
                                        "the code interpreter) is missing or wrong")
            await error_response(error)(scope, receive, send)
            return
        scope["state"] = {**scope.get("state", {}), "principal": sandbox.owner}
        scope["e2b.sandbox"], scope["e2b.registry"], scope["e2b.state"] = sandbox, self.registry, self.state
        if port == ENVD_PORT:
            for prefix, application in self.connect_apps.items():
                if path.startswith(prefix):
                    # The services act on the sandbox checked here, never on one they would read from headers.
                    checked = CHECKED_SANDBOX.set(sandbox)
                    try:
                        await application(scope, receive, send)
                    finally:
                        CHECKED_SANDBOX.reset(checked)
                    return
            await self._answer(self.envd, scope, receive, send)
        elif port == INTERPRETER_PORT:
            await self._answer(self.interpreter, scope, receive, send)
        else:
            await _gone(sandbox_id, f"port {port} is not open in sandbox {sandbox_id!r}: sandlot serves the daemon "
                                    f"({ENVD_PORT}) and the code interpreter ({INTERPRETER_PORT})")(scope, receive, send)

    async def _answer(self, router: Router, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the router; a sandlot error before the response started becomes E2B's error body."""
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        scope["e2b.state"] = self.state
        scope["e2b.registry"] = self.registry
        try:
            await router(scope, receive, watching_send)
        except SandlotError as exc:
            if started:
                raise
            await error_response(exc)(scope, receive, send)


def _authorized(sandbox: E2BSandbox, port: str, token: str | None, traffic: str | None) -> bool:
    """The daemon wants the access token; the code interpreter takes it or the traffic token (the SDKs send only
    the latter on context calls). Any token presented must be right."""
    if port == ENVD_PORT:
        return sandbox.token_ok(token)
    if token is None and traffic is None:
        return False
    return (token is None or sandbox.token_ok(token)) and (traffic is None or sandbox.traffic_ok(traffic))


def _gone(sandbox_id: str, message: str | None = None) -> PlainTextResponse:
    """E2B's proxy answer for a sandbox (or port) that is not there: 502, which the SDKs read as "not running"."""
    return PlainTextResponse(message or f"The sandbox {sandbox_id} was not found", status_code=502)
