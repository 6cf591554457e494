"""What the dispatcher (dispatch.py) puts in a request's ASGI scope for the E2B routes, read back typed.

``e2b.state`` and ``e2b.registry`` are set on every E2B call; ``e2b.sandbox`` only on in-sandbox calls, once the
dispatcher has checked the sandbox's access token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from ..server.state import ServerState
    from .sandboxes import E2BSandbox, Sandboxes


def state(request: Request) -> ServerState:
    value: ServerState = request.scope["e2b.state"]
    return value


def registry(request: Request) -> Sandboxes:
    value: Sandboxes = request.scope["e2b.registry"]
    return value


def sandbox(request: Request) -> E2BSandbox:
    """The sandbox an in-sandbox call is for (its token already checked)."""
    value: E2BSandbox = request.scope["e2b.sandbox"]
    return value
