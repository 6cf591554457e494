"""The two hot routes' plain case without FastAPI's machinery: ``POST /v1/execute`` and a session cell.

FastAPI answers every request the same long way: its exception middleware and exit stacks, the
router's matching (candidate by candidate, through each included router), the dependency tree (the
bearer scheme, the caller, the session), the body read, parsed and validated against the route's
fields, and the endpoint called through all of it. A one-route app pays little of that; driven
in-process with the engine stubbed, sandlot's app took 122 us per execute and 168 us per cell where a
bare one-route FastAPI app takes 48 us (benchmarks/README.md, ``bench_http``); through here, 48 and 68.

``FastPath`` sits between ``RequestGuard`` and FastAPI's app, so the guard's body limits, the
drain's tracking, the metric and the log line are the same either way. It takes a request only in
its plain case: a POST with a JSON body (``application/json``), a valid key (or none needed), a
body that validates, no stream asked for, and for a cell, the caller's own open session; and not
while the server drains. It answers it with the route's own function (``routes_runs.answer_execute``,
``routes_sessions.answer_cell``) and a sandlot error with the error seam's own answer
(``errors.sandlot_error_response``): one source of truth, the same status and bytes. Anything else
goes to FastAPI unchanged, with the body already read replayed, so that every refusal (401, 400,
404, 503...) is FastAPI's own and the contract's.

Which route answers a path is FastAPI's to say: the first request of each shape goes to FastAPI, and
only once its router has answered it with the route this module stands for (``scope["route"]``) does
the fast path take that shape. A route added in front of it, or a server mounted under a root path,
keeps it on FastAPI's path.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import AuthenticationError, SandlotError
from . import routes_runs, routes_sessions
from .errors import sandlot_error_response
from .schemas import ExecuteRequest, SessionExecuteRequest
from .sse import wants_stream
from .state import ServerState, find_owned_session

EXECUTE_PATH = "/v1/execute"
SESSIONS_PREFIX = "/v1/sessions/"
CELL_SUFFIX = "/execute"
# The body types taken here; FastAPI takes more (any ``application/*+json``), and gets those.
JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8", b"application/json;charset=utf-8"})

_EXECUTE, _CELL = "execute", "cell"
_ENDPOINTS = {_EXECUTE: routes_runs.execute, _CELL: routes_sessions.execute_in_session}


class FastPath:
    """ASGI: answers the plain case of the two hot routes itself, hands everything else to ``app``."""

    def __init__(self, app: ASGIApp, *, state: ServerState) -> None:
        self.app = app
        self.state = state
        self.routes: dict[str, APIRoute] = {}
        """The route FastAPI answered each shape with, once it has: only then is that shape taken here."""
        self.taken = 0
        """Requests answered here (a test's proof that the plain case does not fall back unseen)."""
        state.extras["fast_path"] = self

    def __repr__(self) -> str:
        return f"<FastPath routes={sorted(self.routes)} taken={self.taken}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        shape = _shape(scope)
        if shape is None:
            await self.app(scope, receive, send)
            return
        route = self.routes.get(shape)
        if route is None:
            await self._learn(shape, scope, receive, send)
            return
        authorization = content_type = accept = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"accept" and accept is None:
                accept = value.decode("latin-1")
        if content_type is None or content_type.lower() not in JSON_TYPES:
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        body = b""
        while True:  # TooLargeError and the read timeout come from RequestGuard's receive, as on FastAPI's path
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":
                await self.app(scope, _replay(read, receive), send)
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        # In FastAPI's order: the body first, then the caller (and the drain), then the session.
        taken = self._plain(shape, scope, body, authorization, accept)
        if taken is None:
            await self.app(scope, _replay(read, receive), send)
            return
        who, request, session = taken
        # What FastAPI's router would have put in the scope: the route is the metric's and the span's template.
        scope["route"], scope["endpoint"] = route, route.endpoint
        scope["path_params"] = {} if session is None else {"session_id": session.id}
        scope.setdefault("state", {})["principal"] = who  # the log line's
        self.taken += 1
        try:
            if session is None:
                assert isinstance(request, ExecuteRequest)
                response = await routes_runs.answer_execute(self.state, request, who, accept)
            else:
                assert isinstance(request, SessionExecuteRequest)
                response = await routes_sessions.answer_cell(self.state, session, request, accept)
        except SandlotError as exc:
            response = sandlot_error_response(exc)
        await response(scope, receive, send)

    def _plain(self, shape: str, scope: Scope, body: bytes, authorization: str | None,
               accept: str | None) -> tuple[str, BaseModel, Any] | None:
        """(caller, request body, session or None) when the request is the plain case; None to hand it on."""
        try:
            who = self.state.auth.principal(authorization)
        except AuthenticationError:
            return None
        if self.state.draining:
            return None
        session = None
        if shape == _CELL:
            session_id = scope["path"][len(SESSIONS_PREFIX):-len(CELL_SUFFIX)]
            session = find_owned_session(self.state, session_id, who)
            if session is None:
                return None
        try:
            document = json.loads(body)  # as Starlette's Request.json
        except (ValueError, RecursionError):
            return None
        if not isinstance(document, dict):
            return None
        model = ExecuteRequest if shape == _EXECUTE else SessionExecuteRequest
        try:
            request = model.model_validate(document)
        except ValidationError:
            return None
        if wants_stream(request.stream, accept):
            return None
        return who, request, session

    async def _learn(self, shape: str, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI answers; if its router chose the route this shape stands for, later ones are taken here."""
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            if isinstance(route, APIRoute) and route.endpoint is _ENDPOINTS[shape] and "POST" in (route.methods or ()):
                self.routes[shape] = route


def _shape(scope: Scope) -> str | None:
    """Which hot route a request's path and method are for, if any (before FastAPI has said so)."""
    if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("root_path") or scope.get("query_string"):
        return None
    path: str = scope["path"]
    if path == EXECUTE_PATH:
        return _EXECUTE
    if path.startswith(SESSIONS_PREFIX) and path.endswith(CELL_SUFFIX):
        session_id = path[len(SESSIONS_PREFIX):-len(CELL_SUFFIX)]
        if session_id and "/" not in session_id:
            return _CELL
    return None


def _replay(read: list[Message], receive: Receive) -> Receive:
    """``receive`` as it was before the fast path read ``read`` from it."""
    pending = deque(read)

    async def replayed() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replayed
