"""The agent endpoint: ``POST /v1/chat/completions`` and ``GET /v1/models``, OpenAI-compatible."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, StreamingResponse

from ..agent.openai_format import ChatRequest, model_list
from ..agent.service import AgentService
from ..engine import Session
from .schemas import error_responses
from .state import ServerState, get_state, principal

router = APIRouter(prefix="/v1", tags=["agent"])


async def agent_service(state: ServerState = Depends(get_state)) -> AgentService:
    service: AgentService = state.extras["agent"]  # type: ignore[assignment]
    return service


@router.get("/models", summary="Models the agent endpoint serves (OpenAI format)", responses=error_responses(401, 503))
async def models(_who: str = Depends(principal), service: AgentService = Depends(agent_service)) -> Any:
    return model_list(service.model_names)


@router.post("/chat/completions", summary="OpenAI-compatible chat completions with server-side code execution",
             responses={200: {"description": "A chat.completion, or with `stream: true` chat.completion.chunk "
                                             "events (text/event-stream).",
                              "content": {"application/json": {"schema": {"type": "object"}},
                                          "text/event-stream": {"schema": {"type": "string"}}}},
                        **error_responses(400, 401, 404, 429, 503), 502: {"description": "The upstream model failed."},
                        504: {"description": "The upstream model timed out."}})
async def chat_completions(body: ChatRequest, who: str = Depends(principal), state: ServerState = Depends(get_state),
                           service: AgentService = Depends(agent_service)) -> Any:
    upstream = service.upstream_for(body.model)
    # Refused now, not inside the stream: once a stream has begun the status is 200 and a
    # quota error would only break the connection (and a session would be made for nothing).
    state.quotas.check_run(who)
    owned: Session | None = None
    if body.session_id is not None:
        if not state.quotas.owns(who, body.session_id):
            from .._errors import NotFoundError

            raise NotFoundError(f"no session {body.session_id!r}")
        owned = state.engine.get_session(body.session_id)
    else:
        state.quotas.check_new_session(who)
    session, delete_after = await service.open_session(body, owned, owner=who)
    if not delete_after and owned is None:
        state.quotas.add_session(who, session.id)

    async def cleanup() -> None:
        if delete_after and session.id in state.engine.sessions:
            await state.engine.close_session(session.id)

    if body.stream:
        async def events() -> Any:
            lines = service.stream(body, session, upstream, kept=not delete_after)
            try:
                with state.quotas.run(who):
                    async for line in lines:
                        yield line
            finally:
                # After a client disconnect this runs in Starlette's cancelled scope, where every
                # await is cancelled again: shielded, the loop is stopped and the session torn
                # down to the end (not left half-closed, its uid and workspace leaked).
                with anyio.CancelScope(shield=True):
                    await lines.aclose()
                    await cleanup()

        return StreamingResponse(events(), media_type="text/event-stream")
    try:
        with state.quotas.run(who):
            return JSONResponse(await service.complete(body, session, upstream, kept=not delete_after))
    finally:
        await cleanup()
