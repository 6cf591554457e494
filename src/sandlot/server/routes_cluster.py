"""``GET /v1/cluster`` (cluster mode only): each node's engine, its health and what it holds.

The answer is what the front-end saw at its last look at the nodes (every ``poll_interval``, 0.5 s by
default): reading it costs no call to any node.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from .schemas import ClusterInfo, error_responses
from .state import ServerState, get_state, principal

router = APIRouter(prefix="/v1", tags=["cluster"])


@router.get("/cluster", response_model=ClusterInfo, summary="The cluster's nodes and their engines",
            responses=error_responses(401, 503))
async def cluster(_: str = Depends(principal), state: ServerState = Depends(get_state)) -> Any:
    nodes = state.engine.node_figures()  # type: ignore[attr-defined]  # only mounted with ClusterEngine
    return {"front_end_node": state.engine.driver_node,  # type: ignore[attr-defined]
            "nodes": [{"id": n["id"], "healthy": n["healthy"], "lost": n["lost"], "reasons": n.get("reasons", []),
                       "isolation": n.get("isolation"),
                       "sandboxes": n["sandboxes"], "sessions": n["sessions"], "pool_ready": n["pool_ready"],
                       "pool_target": n["pool_target"], "runs": n["runs"]} for n in nodes]}
