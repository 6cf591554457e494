"""E2B's control plane: sandboxes created, found, listed, connected to, timed and killed.

The SDKs authenticate with ``X-API-KEY``: it is one of sandlot's API keys, and its principal owns the sandboxes it
makes (another key's sandbox is not found). Errors have E2B's body, ``{"code", "message"}``. What sandlot does not
offer (pause and resume, snapshots, forks, templates, volumes, changing network rules, metrics and logs) answers
``501`` with a sentence that says so. Network at create is sandlot's egress (``network``).
"""

from __future__ import annotations

import datetime
import math
import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._errors import InvalidRequestError, UnavailableError
from . import scope, templates
from .bodies import json_object
from .environment import checked_env
from .errors import NotSupported
from .network import requested_network
from .sandboxes import E2BSandbox

ENVD_VERSION = "0.5.7"
"""The daemon version reported to the SDKs: the features of E2B's daemon up to it are served (octet-stream uploads,
the default user, closing stdin); the SDKs then use no newer call."""
CLIENT_ID = "sandlot"
MAX_PAGE = 100


def _owner(request: Request) -> str:
    """Who is calling (401 without a valid key, 503 while the server shuts down), as for sandlot's own routes."""
    state = scope.state(request)
    if state.draining:
        raise UnavailableError("the server is shutting down")
    key = request.headers.get("x-api-key")
    who = state.auth.principal(f"Bearer {key}" if key else request.headers.get("authorization"))
    request.scope.setdefault("state", {})["principal"] = who
    return who


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat().replace("+00:00", "Z")


def _sandbox_json(sandbox: E2BSandbox) -> dict[str, Any]:
    return {"templateID": sandbox.template, "sandboxID": sandbox.id, "clientID": CLIENT_ID, "envdVersion": ENVD_VERSION,
            "envdAccessToken": sandbox.access_token, "trafficAccessToken": sandbox.traffic_token, "domain": None}


def _listed_json(sandbox: E2BSandbox) -> dict[str, Any]:
    limits = sandbox.session.limits
    return {"templateID": sandbox.template, "sandboxID": sandbox.id, "clientID": CLIENT_ID,
            "startedAt": _iso(sandbox.started_at), "endAt": _iso(sandbox.end_at), "cpuCount": max(1, int(limits.cpus)),
            "memoryMB": int(limits.memory) // (1 << 20), "diskSizeMB": int(limits.workspace_size) // (1 << 20),
            "state": "running", "envdVersion": ENVD_VERSION, "metadata": sandbox.metadata}


def _timeout(request: Request, body: dict[str, Any]) -> float | None:
    """E2B's ``timeout``: finite, positive, and no longer than a session may live (``session_max_lifetime``)."""
    value = body.get("timeout")
    if value is None:
        return None
    longest = scope.state(request).engine.config.session_max_lifetime
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or not 0 < value <= longest:
        raise InvalidRequestError(f"'timeout' must be a number of seconds above 0 and at most {longest:g}")
    return float(value)


def _strings(value: object, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidRequestError(f"'{name}' must be an object of strings")
    return dict(value)


async def create(request: Request) -> Response:
    owner = _owner(request)
    body = await json_object(request)
    if body.get("volumeMounts"):
        raise NotSupported("volume mounts are not supported: a sandbox's files are its workspace")
    if body.get("autoPause") or (isinstance(body.get("lifecycle"), dict) and body["lifecycle"].get("onTimeout") == "pause"):
        raise NotSupported("pausing at the timeout is not supported: a sandbox is killed at its timeout")
    if body.get("mcp"):
        raise NotSupported("MCP servers in the sandbox are not supported")
    template = templates.resolve(body.get("templateID"))
    state = scope.state(request)
    network = requested_network(body, state.engine.config.egress.allow)
    with state.quotas.new_session(owner):
        sandbox = await scope.registry(request).create(owner=owner, template=template, timeout=_timeout(request, body),
                                                  metadata=_strings(body.get("metadata"), "metadata"),
                                                  env=checked_env(_strings(body.get("envVars"), "envVars"), "envVars"),
                                                  network=network)
        state.quotas.add_session(owner, sandbox.id)
    return JSONResponse(_sandbox_json(sandbox), status_code=201)


async def get(request: Request) -> Response:
    sandbox = scope.registry(request).get(request.path_params["sandbox_id"], _owner(request))
    return JSONResponse({**_listed_json(sandbox), "envdAccessToken": sandbox.access_token,
                         "trafficAccessToken": sandbox.traffic_token, "domain": None})


def _metadata_filter(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    # The SDKs quote each key and value before url-encoding the pairs (E2B's API unquotes them again): after the
    # query string's own decoding and parse_qsl's, one unquote is left, so it is not one too many.
    return {urllib.parse.unquote(k): urllib.parse.unquote(v) for k, v in urllib.parse.parse_qsl(raw)}


async def list_sandboxes(request: Request) -> Response:
    owner = _owner(request)
    query = request.query_params
    wanted = _metadata_filter(query.get("metadata"))
    states = {s for value in query.getlist("state") for s in value.split(",") if s}
    found = sorted((s for s in scope.registry(request).owned(owner)
                    if all(s.metadata.get(k) == v for k, v in wanted.items()) and (not states or "running" in states)),
                   key=lambda s: (s.started_at, s.id))
    try:
        limit = min(MAX_PAGE, int(query.get("limit") or MAX_PAGE))
    except ValueError:
        raise InvalidRequestError("'limit' must be a number") from None
    if limit < 1:
        raise InvalidRequestError("'limit' must be at least 1")
    start = 0
    token = query.get("nextToken")
    if token:
        start = next((i for i, s in enumerate(found) if s.id == token), len(found))
    page = found[start:start + limit]
    headers = {"x-next-token": found[start + limit].id} if len(found) > start + limit else {}
    return JSONResponse([_listed_json(s) for s in page], headers=headers)


async def connect(request: Request) -> Response:
    registry = scope.registry(request)
    sandbox = registry.get(request.path_params["sandbox_id"], _owner(request))
    timeout = _timeout(request, await json_object(request))
    if timeout is not None:
        registry.set_timeout(sandbox, timeout)
    return JSONResponse(_sandbox_json(sandbox), status_code=200)


async def set_timeout(request: Request) -> Response:
    registry = scope.registry(request)
    sandbox = registry.get(request.path_params["sandbox_id"], _owner(request))
    timeout = _timeout(request, await json_object(request))
    if timeout is None:
        raise InvalidRequestError("'timeout' is required")
    registry.set_timeout(sandbox, timeout)
    return Response(status_code=204)


async def kill(request: Request) -> Response:
    await scope.registry(request).kill(request.path_params["sandbox_id"], _owner(request))
    return Response(status_code=204)


def _out_of_scope(what: str) -> Any:
    async def endpoint(request: Request) -> Response:
        _owner(request)
        raise NotSupported(f"{what} is not supported by sandlot's E2B face (docs/e2b.md)")
    return endpoint


routes = [
    Route("/sandboxes", create, methods=["POST"]),
    Route("/v2/sandboxes", create, methods=["POST"]),
    Route("/sandboxes", list_sandboxes, methods=["GET"]),
    Route("/v2/sandboxes", list_sandboxes, methods=["GET"]),
    Route("/sandboxes/metrics", _out_of_scope("sandbox metrics"), methods=["GET"]),  # before {sandbox_id}
    Route("/sandboxes/{sandbox_id}", get, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}", kill, methods=["DELETE"]),
    Route("/sandboxes/{sandbox_id}/connect", connect, methods=["POST"]),
    Route("/v2/sandboxes/{sandbox_id}/connect", connect, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/timeout", set_timeout, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/pause", _out_of_scope("pausing a sandbox"), methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/resume", _out_of_scope("resuming a paused sandbox"), methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/snapshots", _out_of_scope("E2B snapshots"), methods=["POST", "GET"]),
    Route("/sandboxes/{sandbox_id}/fork", _out_of_scope("forking a sandbox"), methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/refreshes", _out_of_scope("refreshing a sandbox"), methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/network", _out_of_scope("network rules"), methods=["PUT"]),
    Route("/sandboxes/{sandbox_id}/metrics", _out_of_scope("sandbox metrics"), methods=["GET"]),
    Route("/sandboxes/{sandbox_id}/logs", _out_of_scope("sandbox logs"), methods=["GET"]),
    Route("/templates", _out_of_scope("building templates"), methods=["GET", "POST"]),
    Route("/templates/{rest:path}", _out_of_scope("building templates"), methods=["GET", "POST", "PATCH", "DELETE"]),
    Route("/v2/templates", _out_of_scope("building templates"), methods=["GET", "POST"]),
    Route("/v2/templates/{rest:path}", _out_of_scope("building templates"), methods=["GET", "POST", "PATCH", "DELETE"]),
    Route("/volumes", _out_of_scope("volumes"), methods=["GET", "POST"]),
    Route("/volumes/{rest:path}", _out_of_scope("volumes"), methods=["GET", "POST", "DELETE"]),
    Route("/snapshots", _out_of_scope("E2B snapshots"), methods=["GET"]),
]
