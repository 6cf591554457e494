"""Sessions, their files and their notebook: ``/v1/sessions/...``."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from .._errors import TooLargeError
from .._models import ExecutionResult
from ..engine import EventCallback, Session
from .notebook import session_notebook
from .responses import model_response
from .routes_runs import STREAM_DOC, check_before_stream, execute_cell, record
from .schemas import (
    FileList,
    SessionCreateRequest,
    SessionExecuteRequest,
    SessionInfo,
    SessionList,
    SessionMetrics,
    error_responses,
    network_allow,
)
from .sse import SSE_MEDIA_TYPE, stream_run, wants_stream
from .state import ServerState, get_state, owned_session, principal, server_state

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
FILE_ERRORS = error_responses(400, 401, 404, 413, 503)


@router.post("", status_code=201, response_model=SessionInfo, summary="Create a session",
             responses=error_responses(400, 401, 429, 503))
async def create_session(body: SessionCreateRequest | None = None, who: str = Depends(principal),
                         state: ServerState = Depends(get_state)) -> Any:
    body = body or SessionCreateRequest()
    with state.quotas.new_session(who):
        session = await state.engine.create_session(timeout=body.timeout, idle_timeout=body.idle_timeout, env=body.env,
                                                    tools=body.tools,
                                                    limits=body.limits.changes() if body.limits else None, owner=who,
                                                    environment=body.environment,
                                                    network=network_allow(body.network, state.engine.config.egress.allow))
        state.quotas.add_session(who, session.id)
    return JSONResponse(session.info(), status_code=201)


@router.get("", response_model=SessionList, summary="List your sessions", responses=error_responses(400, 401, 503))
async def list_sessions(who: str = Depends(principal), state: ServerState = Depends(get_state),
                        session_state: Literal["running", "paused"] | None = Query(
                            None, alias="state", description="Only the sessions in this state.")) -> Any:
    owned = [state.engine.sessions[i] for i in sorted(state.quotas.sessions.get(who, ())) if i in state.engine.sessions]
    return {"sessions": [s.info() for s in owned if session_state is None or s.state == session_state]}


@router.post("/import", status_code=201, response_model=SessionInfo, summary="A new session from an archive",
             responses=error_responses(400, 401, 413, 429, 503),
             openapi_extra={"requestBody": {"required": True, "description": "The archive (gzip tar) as raw bytes.",
                                            "content": {"application/octet-stream": {
                                                "schema": {"type": "string", "format": "binary"}}}}})
async def import_session(request: Request, who: str = Depends(principal), state: ServerState = Depends(get_state)) -> Any:
    data = await request.body()
    with state.quotas.new_session(who):
        session = await state.engine.import_session(data, owner=who)
        state.quotas.add_session(who, session.id)
    return JSONResponse(session.info(), status_code=201)


@router.get("/{session_id}", response_model=SessionInfo, summary="Get a session", responses=error_responses(401, 404, 503))
async def get_session(session: Session = Depends(owned_session)) -> Any:
    return session.info()


@router.get("/{session_id}/metrics", response_model=SessionMetrics, summary="What the session uses now",
            responses=error_responses(401, 404, 503))
async def session_metrics(session: Session = Depends(owned_session)) -> Any:
    return session.live_figures()  # a few small reads of cgroup and /proc files, on the loop: no race with teardown


@router.post("/{session_id}/pause", response_model=SessionInfo, summary="Save the state and end the interpreter",
             responses=error_responses(401, 404, 503))
async def pause_session(session: Session = Depends(owned_session)) -> Any:
    await session.pause()
    return session.info()


@router.post("/{session_id}/resume", response_model=SessionInfo, summary="Bring the interpreter back with its state",
             responses=error_responses(401, 404, 429, 503))
async def resume_session(session: Session = Depends(owned_session)) -> Any:
    await session.resume()
    return session.info()


@router.post("/{session_id}/fork", status_code=201, response_model=SessionInfo,
             summary="A new session with a copy of this one's files and state", responses=error_responses(401, 404, 429, 503))
async def fork_session(session: Session = Depends(owned_session), who: str = Depends(principal),
                       state: ServerState = Depends(get_state)) -> Any:
    with state.quotas.new_session(who):
        forked = await state.engine.fork_session(session.id, owner=who)
        state.quotas.add_session(who, forked.id)
    return JSONResponse(forked.info(), status_code=201)


@router.get("/{session_id}/archive", summary="The session as one archive (gzip tar, docs/sessions.md)",
            response_class=Response,
            responses={200: {"content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "The archive."}, **error_responses(401, 404, 503)})
async def session_archive(session: Session = Depends(owned_session)) -> Response:
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the response has been sent
    try:
        await session.export(spool)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def chunks() -> Iterator[bytes]:
        with spool:
            while chunk := spool.read(1 << 20):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/gzip",
                             headers={"Content-Disposition": f'attachment; filename="{session.id}.tar.gz"'})


@router.delete("/{session_id}", status_code=204, summary="Delete a session and its sandbox",
               responses=error_responses(401, 404, 503))
async def delete_session(session: Session = Depends(owned_session), state: ServerState = Depends(get_state)) -> Response:
    state.quotas.remove_session(session.id)
    await state.engine.close_session(session.id)
    return Response(status_code=204)


@router.post("/{session_id}/execute", response_model=ExecutionResult, summary="Run a cell in a session",
             responses={200: STREAM_DOC, **error_responses(400, 401, 404, 413, 429, 503)})
async def execute_in_session(body: SessionExecuteRequest, request: Request,
                             session: Session = Depends(owned_session)) -> Any:
    return await answer_cell(server_state(request), session, body, request.headers.get("accept"))


async def answer_cell(state: ServerState, session: Session, body: SessionExecuteRequest, accept: str | None) -> Response:
    """The answer to a cell for ``session``, whose owner is the caller (the route's, and the fast path's)."""
    who = session.owner
    started = asyncio.Event()

    async def run(on_event: EventCallback | None = None) -> ExecutionResult:
        with state.quotas.run(who):
            result = await execute_cell(session, body.code, body.timeout, on_event, started)
        record(state, "session", result, session.id)
        return result

    if wants_stream(body.stream, accept):
        check_before_stream(state, who, body.code, body.timeout)

        async def stop(task: asyncio.Task[ExecutionResult]) -> None:
            if started.is_set():
                await session.interrupt()  # keep the session's state; the cell stops with KeyboardInterrupt
            else:
                task.cancel()  # still waiting for its turn: it never runs, and the running cell is another's

        return StreamingResponse(stream_run(run, stop), media_type=SSE_MEDIA_TYPE)
    return model_response(await run())


@router.post("/{session_id}/interrupt", status_code=204, summary="Interrupt the running cell",
             responses=error_responses(401, 404, 503))
async def interrupt(session: Session = Depends(owned_session)) -> Response:
    await session.interrupt()
    return Response(status_code=204)


@router.get("/{session_id}/files", response_model=FileList, summary="List the workspace's files",
            responses=error_responses(401, 404, 503))
async def list_files(session: Session = Depends(owned_session)) -> Any:
    workspace = await session.open_workspace()
    files = await asyncio.to_thread(workspace.list_files)
    return {"files": [{"path": f.path, "size": f.size,
                       "modified_at": datetime.fromtimestamp(f.modified_at, UTC).isoformat()} for f in files]}


@router.put("/{session_id}/files/{path:path}", status_code=201, summary="Upload a file (raw body)",
            response_class=Response, responses={201: {"description": "Stored; no body."}, **FILE_ERRORS},
            openapi_extra={"requestBody": {
                "required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_file(path: str, request: Request, session: Session = Depends(owned_session),
                      state: ServerState = Depends(get_state)) -> Response:
    data = await request.body()
    if len(data) > state.config.max_file_bytes:
        raise TooLargeError(f"the upload is over the file limit of {state.config.max_file_bytes} bytes")
    await asyncio.to_thread((await session.open_workspace()).write, path, data)
    return Response(status_code=201)


@router.get("/{session_id}/files/{path:path}", summary="Download a file (raw bytes)", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "The file's bytes."}, **FILE_ERRORS})
async def download_file(path: str, session: Session = Depends(owned_session),
                        state: ServerState = Depends(get_state)) -> Response:
    data = await asyncio.to_thread((await session.open_workspace()).read, path, state.config.max_file_bytes)
    return Response(data, media_type="application/octet-stream")


@router.delete("/{session_id}/files/{path:path}", status_code=204, summary="Delete a file", responses=FILE_ERRORS)
async def delete_file(path: str, session: Session = Depends(owned_session)) -> Response:
    await asyncio.to_thread((await session.open_workspace()).delete, path)
    return Response(status_code=204)


@router.get("/{session_id}/notebook", summary="The session's history as a Jupyter notebook (.ipynb)",
            responses={200: {"content": {"application/x-ipynb+json": {"schema": {"type": "object"}}},
                             "description": "nbformat 4 JSON."}, **error_responses(401, 404, 503)})
async def notebook(session: Session = Depends(owned_session)) -> Any:
    return JSONResponse(session_notebook(session), media_type="application/x-ipynb+json",
                        headers={"Content-Disposition": f'attachment; filename="{session.id}.ipynb"'})
