"""The ASGI application: routes, the error seam, middleware, and the engine's lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .. import __version__, tracing
from .._errors import SandlotError, SetupError
from ..agent.service import AgentService
from ..engine import Engine
from ..mcp import http_endpoint as mcp_http_endpoint
from ..tools import ToolRegistry, load_registry
from . import errors, routes_agent, routes_commands, routes_environments, routes_ops, routes_runs, routes_sessions, routes_ui
from .auth import Authenticator, Quotas
from .config import ServerConfig
from .fast_path import FastPath
from .metrics import Metrics
from .middleware import RequestGuard
from .state import ServerState

log = logging.getLogger("sandlot.server")
DESCRIPTION = "Run untrusted Python in kernel-isolated sandboxes, in milliseconds. The contract is API.md."


def create_app(config: ServerConfig | None = None, tools: ToolRegistry | None = None, *,
               fast_path: bool = True) -> FastAPI:
    """A FastAPI app that owns an engine for its lifespan.

    ``tools``: host tools for sandboxed code; without it, ``config.tools`` (module:attribute) is loaded.
    ``fast_path``: the hot routes' plain case skips FastAPI's machinery (``fast_path.py``); off, every
    request takes FastAPI's path (tests compare the two).
    """
    config = config or ServerConfig()
    tracing.configure()  # on only when the OTEL_* environment asks for traces
    metrics = Metrics()
    if tools is None and config.tools:
        tools = load_registry(config.tools)
    engine = _engine_for(config, tools)
    state = ServerState(config=config, engine=engine, auth=Authenticator(config.all_api_keys()),
                        quotas=Quotas(config.max_runs_per_key, config.max_sessions_per_key), metrics=metrics)

    agent = AgentService(engine, config.models, config.agent)
    state.extras["agent"] = agent
    mcp_endpoint = mcp_http_endpoint(state)  # /mcp: the MCP tools over streamable HTTP (docs/mcp.md)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await engine.start()
        except SandlotError as exc:
            state.startup_error = exc  # `serve` says it in one line; the lifespan's traceback would say it in 30
            raise
        engine.on_session_closed.append(state.quotas.remove_session)
        if config.ray is not None:  # sessions other front-ends make
            engine.on_session_seen.append(state.quotas.add_session)  # type: ignore[attr-defined]
        for kept in engine.sessions.values():  # sessions the last server left (durable sessions), or the cluster's
            state.quotas.add_session(kept.owner, kept.id)
        metrics.attach(engine, cluster=config.ray is not None)
        try:
            async with mcp_endpoint.running():
                yield
        finally:
            state.draining = True
            await agent.close()
            await engine.close()
            if state.startup_error is None:
                log.info("sandlot stopped: every sandbox is gone")

    app = FastAPI(title="sandlot", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.sandlot = state
    errors.install(app)
    app.include_router(routes_runs.router)
    app.include_router(routes_sessions.router)
    app.include_router(routes_commands.router)
    app.include_router(routes_environments.router)
    app.include_router(routes_agent.router)
    app.include_router(routes_ops.router)
    if config.ray is not None:
        from . import routes_cluster

        app.include_router(routes_cluster.router)
    if config.ui:
        app.include_router(routes_ui.router)  # the browser playground: static files, no API of its own
    mcp_endpoint.mount(app)
    if config.e2b:  # imported only when on: `import sandlot` stays free of the E2B face and its dependencies
        try:
            from ..e2b import install as install_e2b
        except ImportError as exc:
            raise SetupError(f"--e2b needs the e2b extra: pip install 'sandlot[e2b]' ({exc})") from None
        install_e2b(app, state)  # inside the guards below: E2B calls are size-capped, drained, logged and counted
    if fast_path:
        app.add_middleware(FastPath, state=state)  # inside the guard: its limits, drain, metric and log hold
    app.add_middleware(RequestGuard, max_body=config.max_request_bytes, metrics=metrics, drain=state.drain,
                       read_timeout=config.request_read_timeout)
    tracing.install_http(app)  # outermost: its span holds what the guards answer too
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _engine_for(config: ServerConfig, tools: ToolRegistry | None) -> Engine:
    """This machine's engine; or, with ``ray``, the cluster's (``sandlot.cluster``, imported only then).

    The cluster face offers the public methods of ``Engine`` that the routes, MCP and the agent call
    (``cluster/facade.py`` lists them), so the rest of the server does not know which it has.
    """
    if config.ray is None:
        return Engine(config.engine, tools)
    if tools is not None and tools.names:
        raise SetupError("host tools (--tools) are not available in cluster mode (docs/cluster.md)")
    from ..cluster import ray_env

    if ray_env.is_loopback_address(config.ray):
        ray_env.keep_on_loopback()  # before ray is imported: Ray reads the switch then
    from ..cluster.facade import ClusterConfig, ClusterEngine

    cluster = ClusterEngine(config.engine, ClusterConfig(address=config.ray, node_resource=config.ray_node_resource))
    return cast(Engine, cluster)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's description, corrected to what the server does: validation errors are 400, not 422."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {"description": "Invalid request.",
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    app.openapi_schema = schema
    return schema
