"""Operations: ``GET /healthz`` (always open) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from .. import __version__
from .metrics import CONTENT_TYPE
from .schemas import Health
from .state import ServerState, get_state

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness; 503 while draining",
            responses={503: {"model": Health, "description": "Shutting down."}})
async def healthz(state: ServerState = Depends(get_state)) -> Any:
    engine = state.engine
    body = {"status": "draining" if state.draining else "ok", "isolation": engine.isolation,
            "sandboxes_alive": engine.sandboxes_alive, "sessions": len(engine.sessions),
            "pool_ready": len(engine.pool.ready), "version": __version__}
    return JSONResponse(body, status_code=503 if state.draining else 200)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Text format."}})
async def metrics(state: ServerState = Depends(get_state)) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
