"""The server's shared state and the dependencies routes take it from."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .._errors import NotFoundError, SandlotError, UnavailableError
from ..engine import Engine, Session
from .auth import Authenticator, Quotas
from .config import ServerConfig
from .drain import Drain
from .metrics import Metrics

bearer = HTTPBearer(auto_error=False, description="An API key, when the server was started with keys.")


@dataclass
class ServerState:
    config: ServerConfig
    engine: Engine
    auth: Authenticator
    quotas: Quotas
    metrics: Metrics
    draining: bool = False
    """Set on SIGTERM/SIGINT: new API calls get 503 while the calls in ``drain`` finish."""
    drain: Drain = field(default_factory=Drain)
    startup_error: SandlotError | None = None
    """Why the engine could not start, for ``serve`` to report in one line."""
    extras: dict[str, object] = field(default_factory=dict)


# The dependencies are ``async def`` although none awaits: FastAPI runs a plain ``def`` dependency in its
# threadpool, a thread hop (two context switches and a lock) on every request for a dictionary lookup.
# And they are few: FastAPI solves a dependency's own dependencies again wherever it appears in a route's
# tree, cached or not, so a route asks for the least it needs (``owned_session`` gives the caller too, as
# the session's owner) and the state is read with ``server_state``, not depended on.
def server_state(request: Request) -> ServerState:
    """The server's state, for a route or dependency that has the request."""
    state: ServerState = request.app.state.sandlot
    return state


async def get_state(request: Request) -> ServerState:
    return server_state(request)


async def principal(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    """Who is calling (401 without a valid key, 503 while shutting down)."""
    state = server_state(request)
    header = f"Bearer {credentials.credentials}" if credentials else request.headers.get("authorization")
    who = state.auth.principal(header)
    request.scope.setdefault("state", {})["principal"] = who
    if state.draining:
        raise UnavailableError("the server is shutting down")
    return who


async def owned_session(session_id: str, request: Request, who: str = Depends(principal)) -> Session:
    """The caller's session, or 404 (another key's session is not found either); its ``owner`` is the caller."""
    session = find_owned_session(server_state(request), session_id, who)
    if session is None:
        raise NotFoundError(f"no session {session_id!r}")
    return session


def find_owned_session(state: ServerState, session_id: str, who: str) -> Session | None:
    """``who``'s open session ``session_id``, or None."""
    session = state.engine.sessions.get(session_id)
    if session is None or session.owner != who or session.closed:
        return None
    return session
