"""``GET /v1/environments``: the environments a request may name (``sandlot.environments``)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query

from .schemas import EnvironmentList, error_responses
from .state import ServerState, get_state, principal

router = APIRouter(prefix="/v1", tags=["environments"])


@router.get("/environments", response_model=EnvironmentList, summary="The environments runs and sessions may name",
            responses=error_responses(401, 503), dependencies=[Depends(principal)])
async def list_environments(state: ServerState = Depends(get_state), distributions: bool = Query(
        False, description="Also list what each environment has installed (asks each interpreter: slower).")) -> Any:
    registry = state.engine.environments
    described = await asyncio.to_thread(registry.describe, distributions=distributions) if distributions \
        else registry.describe()
    return {"environments": described}
