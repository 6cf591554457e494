"""Shell commands: ``POST /v1/commands`` (one-shot) and ``/v1/sessions/{id}/commands/...``.

Thin: the engine's ``Session.run_command`` and ``Engine.run_command`` hold the logic
(``engine/commands.py``); these routes check the request, stream when asked, and
map a background command's lifetime onto GET, POST …/stdin and DELETE.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from .._errors import ClosedError, InvalidRequestError, NotFoundError, TooLargeError
from .._models import CommandResult
from ..engine import EventCallback, Session
from ..engine.commands import check_command
from .responses import model_response
from .schemas import (
    CommandList,
    CommandStarted,
    CommandStdinRequest,
    OneShotCommandRequest,
    SessionCommandRequest,
    error_responses,
    network_allow,
)
from .sse import SSE_MEDIA_TYPE, stream_once_begun, stream_run, wants_stream
from .state import ServerState, get_state, owned_session, principal

router = APIRouter(prefix="/v1", tags=["commands"])

SSE_COMMAND_DOC = {"content": {SSE_MEDIA_TYPE: {"schema": {
    "type": "object", "required": ["event", "data"], "properties": {
        "event": {"type": "string", "enum": ["stdout", "stderr", "error", "done"]},
        "data": {"type": "string", "description": "JSON; for `done`, the complete command result."}}}}},
    "description": "With `stream: true` or `Accept: text/event-stream`: events stdout, stderr, done."}


@router.post("/commands", response_model=CommandResult, summary="Run a shell command once in a fresh sandbox",
             responses={200: SSE_COMMAND_DOC, **error_responses(400, 401, 413, 429, 503)})
async def run_command(body: OneShotCommandRequest, request: Request, who: str = Depends(principal),
                      state: ServerState = Depends(get_state)) -> Any:
    files = {f.path: f.data() for f in body.files or []}
    for path, data in files.items():
        if len(data) > state.config.max_file_bytes:
            raise TooLargeError(f"{path!r} is over the file limit of {state.config.max_file_bytes} bytes")
    changes = body.limits.changes() if body.limits else None
    check_command(body.cmd, body.stdin)
    state.engine.run_limits(body.timeout, changes)  # a 400 now, not in the middle of a stream
    network = network_allow(body.network, state.engine.config.egress.allow)
    state.engine.network_policy(network)

    begun = asyncio.Event()

    async def run(on_event: EventCallback | None = None) -> CommandResult:
        with state.quotas.run(who):
            result = await state.engine.run_command(body.cmd, cwd=body.cwd, env=body.env, timeout=body.timeout,
                                                    stdin=body.stdin, files=files, limits=changes, on_event=on_event,
                                                    tenant=who, begun=begun, network=network)
        _record(state, result)
        return result

    if wants_stream(body.stream, request.headers.get("accept")):
        state.quotas.check_run(who)

        async def cancel(task: asyncio.Task[CommandResult]) -> None:
            task.cancel()  # the one-shot sandbox goes, and the command with it

        return await stream_once_begun(run, cancel, begun)
    return model_response(await run())


@router.post("/sessions/{session_id}/commands", response_model=CommandResult, summary="Run a shell command in a session",
             responses={200: SSE_COMMAND_DOC, 201: {"model": CommandStarted, "description": "background: started."},
                        **error_responses(400, 401, 404, 413, 429, 503)})
async def session_command(body: SessionCommandRequest, request: Request, session: Session = Depends(owned_session),
                          who: str = Depends(principal), state: ServerState = Depends(get_state)) -> Any:
    check_command(body.cmd, body.stdin)
    if body.background:
        if body.stdin is not None or body.stream:
            raise InvalidRequestError("a background command takes stdin through POST …/commands/{id}/stdin, "
                                      "and its output through GET …/commands/{id}")
        with _closed_is_not_found(session):
            command = await session.start_command(body.cmd, cwd=body.cwd, env=body.env, timeout=body.timeout)
        return JSONResponse({"id": command.id}, status_code=201)
    state.engine.config.limits.override(state.engine.config.max_limits, timeout=body.timeout)

    async def run(on_event: EventCallback | None = None) -> CommandResult:
        with state.quotas.run(who), _closed_is_not_found(session):
            result = await session.run_command(body.cmd, cwd=body.cwd, env=body.env, timeout=body.timeout,
                                               stdin=body.stdin, on_event=on_event)
        _record(state, result)
        return result

    if wants_stream(body.stream, request.headers.get("accept")):
        state.quotas.check_run(who)

        async def stop(task: asyncio.Task[CommandResult]) -> None:
            task.cancel()  # waiting for its turn: it never runs; running: the command is killed, the session stays

        return StreamingResponse(stream_run(run, stop), media_type=SSE_MEDIA_TYPE)
    return model_response(await run())


@router.get("/sessions/{session_id}/commands", response_model=CommandList, summary="The session's shell commands",
            responses=error_responses(401, 404, 503))
async def list_commands(session: Session = Depends(owned_session)) -> Any:
    return {"commands": [c.result().model_dump(mode="json") for c in session.commands.values()]}


@router.get("/sessions/{session_id}/commands/{command_id}", response_model=CommandResult,
            summary="A command's state and output so far", responses=error_responses(401, 404, 503))
async def get_command(command_id: str, session: Session = Depends(owned_session)) -> Any:
    return session.command(command_id).result().model_dump(mode="json")


@router.post("/sessions/{session_id}/commands/{command_id}/stdin", status_code=204,
             summary="Write to a background command's stdin", responses=error_responses(400, 401, 404, 413, 503))
async def command_stdin(command_id: str, body: CommandStdinRequest, session: Session = Depends(owned_session)) -> Response:
    await session.write_command_stdin(command_id, body.data, eof=body.eof)
    return Response(status_code=204)


@router.delete("/sessions/{session_id}/commands/{command_id}", response_model=CommandResult,
               summary="Kill a command and what it started", responses=error_responses(401, 404, 503))
async def kill_command(command_id: str, session: Session = Depends(owned_session)) -> Any:
    return (await session.kill_command(command_id)).model_dump(mode="json")


@contextlib.contextmanager
def _closed_is_not_found(session: Session) -> Iterator[None]:
    """A session deleted while the call waited for its turn is gone (404), not a conflict."""
    try:
        yield
    except ClosedError:
        raise NotFoundError(f"no session {session.id!r}: it was closed") from None


def _record(state: ServerState, result: CommandResult) -> None:
    state.metrics.record_run("command", result.status, result.duration_ms, result.truncated)
