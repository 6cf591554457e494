"""sandlot as an MCP server: run Python, and keep sessions with files, as MCP tools.

Two transports, one set of tools (``_tools.py``):

* stdio — ``sandlot mcp``: a desktop client starts it as a subprocess; it runs
  its own in-process engine, and everything it opened goes when the client
  disconnects (``_stdio.py``).
* streamable HTTP — ``/mcp`` on the main server, behind the same API keys as
  ``/v1/*``, sharing its engine and per-key quotas (``_http.py``).

The ``mcp`` package is an optional extra (``pip install 'sandlot[mcp]'``).
This module imports without it: ``http_endpoint`` then gives an endpoint that
says how to install it, and ``sandlot mcp`` exits with the same message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from .._errors import SetupError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .._config import EngineConfig
    from ..server.state import ServerState

INSTALL_HINT = "MCP support needs the optional 'mcp' package: pip install 'sandlot[mcp]'"


class HttpEndpoint(Protocol):
    """What the main server needs from the MCP endpoint: a lifespan and a route."""

    def running(self) -> AbstractAsyncContextManager[None]:
        """Enter in the app's lifespan, after the engine has started."""
        ...

    def mount(self, app: FastAPI) -> None:
        """Add the endpoint's route to ``app``."""
        ...


def available() -> bool:
    """Whether the ``mcp`` package is installed."""
    try:
        import mcp.server  # noqa: F401
    except ImportError:
        return False
    return True


def http_endpoint(state: ServerState, path: str = "/mcp") -> HttpEndpoint:
    """The MCP endpoint for the main server (see ``_http.McpHttpEndpoint``), or, without the
    ``mcp`` package, one that answers 404 saying how to install it."""
    if not available():
        return _Unavailable(path)
    from ._http import McpHttpEndpoint

    return McpHttpEndpoint(state, path)


def run_stdio(config: EngineConfig, log_level: str = "info") -> None:
    """Serve the tools over stdin/stdout with an engine of ``config`` until the client goes
    (``sandlot mcp``); logs go to stderr. SetupError without the ``mcp`` package."""
    if not available():
        raise SetupError(INSTALL_HINT)
    from ._stdio import run_stdio as run

    run(config, log_level)


class _Unavailable:
    def __init__(self, path: str) -> None:
        self.path = path

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        yield

    def mount(self, app: FastAPI) -> None:
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        from ..server.errors import error_response

        async def not_installed(_request: Request) -> Response:
            return error_response(404, "not_found", f"this server has no MCP endpoint. {INSTALL_HINT}")

        app.router.routes.append(Route(self.path, not_installed, methods=["GET", "POST", "DELETE"], include_in_schema=False))
