"""Operations: health probes (always open) and ``GET /metrics`` (Prometheus).

``/healthz`` and ``/readyz`` are ``200`` only while a run can be served now; otherwise
``503`` with the reasons (draining, the zygote restarting or backing off, the pool empty
with refills failing, no capacity to spawn, a full disk). ``/livez`` is ``200`` while the
process is serving and its engine is running, whatever its load: point a Kubernetes
liveness probe there, and the readiness probe at ``/readyz``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from .. import __version__
from .metrics import CONTENT_TYPE
from .schemas import Health
from .state import ServerState, get_state

router = APIRouter(tags=["operations"])
_PROBE_RESPONSES: dict[int | str, dict[str, Any]] = {503: {"model": Health, "description": "A run cannot be served now."}}


def health_body(state: ServerState) -> tuple[int, dict[str, Any]]:
    engine = state.engine
    health = engine.health()
    reasons = (["the server is shutting down"] if state.draining else []) + list(health["reasons"])
    status = "draining" if state.draining else "ok" if not reasons else "unavailable"
    body = {"status": status, "reasons": reasons, "isolation": engine.isolation,
            "sandboxes_alive": engine.sandboxes_alive, "sessions": len(engine.sessions),
            "pool_ready": engine.warm_sandboxes, "zygote": health.get("zygote"),
            "environments": health.get("environments") or None, "lean": health.get("lean"), "version": __version__}
    return (200 if not reasons else 503), body


@router.get("/healthz", response_model=Health, summary="Health: 200 only while a run can be served now",
            responses=_PROBE_RESPONSES)
async def healthz(state: ServerState = Depends(get_state)) -> Any:
    status, body = health_body(state)
    return JSONResponse(body, status_code=status)


@router.get("/readyz", response_model=Health, summary="Readiness (for load balancers): as /healthz",
            responses=_PROBE_RESPONSES)
async def readyz(state: ServerState = Depends(get_state)) -> Any:
    status, body = health_body(state)
    return JSONResponse(body, status_code=status)


@router.get("/livez", summary="Liveness: 200 while the process serves and its engine runs",
            responses={503: {"description": "The engine has stopped."}})
async def livez(state: ServerState = Depends(get_state)) -> Any:
    alive = state.engine.running
    return JSONResponse({"status": "ok" if alive else "stopped"}, status_code=200 if alive else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Text format."}})
async def metrics(state: ServerState = Depends(get_state)) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
