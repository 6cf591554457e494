"""Stateless runs and batches: ``POST /v1/execute``, ``POST /v1/batch``."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from .._errors import ClosedError, InvalidRequestError, NotFoundError, SandlotError, TooLargeError
from .._models import ExecutionResult
from ..engine import EventCallback, Session, check_code
from .logs import log_run
from .responses import model_response
from .schemas import BatchItem, BatchRequest, BatchResponse, ExecuteRequest, error_responses, network_allow
from .sse import SSE_MEDIA_TYPE, format_event, stream_once_begun, wants_stream
from .state import ServerState, principal, server_state

router = APIRouter(prefix="/v1", tags=["runs"])

# Before OpenAPI 3.2 (FastAPI writes 3.1), the schema of an event stream describes one event.
SSE_EVENT_SCHEMA = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"type": "string", "enum": ["stdout", "stderr", "output", "error", "done"]},
    "data": {"type": "string", "description": "JSON; for `done`, the complete execution result."}}}
STREAM_DOC = {"content": {SSE_MEDIA_TYPE: {"schema": SSE_EVENT_SCHEMA}},
              "description": "With `stream: true` or `Accept: text/event-stream`: events stdout, stderr, output, error, done."}


@router.post("/execute", response_model=ExecutionResult, summary="Run code once in a fresh sandbox",
             responses={200: STREAM_DOC, **error_responses(400, 401, 413, 429, 503)})
async def execute(body: ExecuteRequest, request: Request, who: str = Depends(principal)) -> Any:
    return await answer_execute(server_state(request), body, who, request.headers.get("accept"))


async def answer_execute(state: ServerState, body: ExecuteRequest, who: str, accept: str | None) -> Response:
    """The answer to ``POST /v1/execute`` from ``who`` (the route's, and the fast path's: ``fast_path.py``)."""
    files = {f.path: f.data() for f in body.files or []}
    for path, data in files.items():
        if len(data) > state.config.max_file_bytes:
            raise TooLargeError(f"{path!r} is over the file limit of {state.config.max_file_bytes} bytes")

    # Unknown tool names and limits out of range are a 400 now, not an error in the middle of a stream.
    state.engine.tool_broker(body.tools)
    state.engine.run_limits(body.timeout, body.limits.changes() if body.limits else None, body.environment)
    network = network_allow(body.network, state.engine.config.egress.allow)
    state.engine.network_policy(network)

    begun = asyncio.Event()

    async def run(on_event: EventCallback | None = None) -> ExecutionResult:
        with state.quotas.run(who):
            result = await state.engine.execute(body.code, timeout=body.timeout, files=files, env=body.env,
                                                tools=body.tools, on_event=on_event,
                                                limits=body.limits.changes() if body.limits else None, tenant=who,
                                                begun=begun, environment=body.environment, network=network)
        record(state, "execute", result)
        return result

    if wants_stream(body.stream, accept):
        check_before_stream(state, who, body.code, body.timeout)

        async def cancel(task: asyncio.Task[ExecutionResult]) -> None:
            task.cancel()  # the sandbox is killed; a one-shot run has no state to keep

        return await stream_once_begun(run, cancel, begun)
    return model_response(await run())


BATCH_STREAM_DOC = {"content": {SSE_MEDIA_TYPE: {"schema": {
    "type": "object", "required": ["event", "data"], "properties": {
        "event": {"type": "string", "enum": ["result", "error", "done"]},
        "data": {"type": "string", "description": "JSON: for `result`, `{\"index\", \"result\"}`; for `done`, the "
                                                  "whole batch response; for `error`, an error body."}}}}},
    "description": "With `stream: true` or `Accept: text/event-stream`: a `result` event per item in item order, "
                   "then `done`."}


@router.post("/batch", response_model=BatchResponse, summary="Run many items in one round trip",
             responses={200: BATCH_STREAM_DOC, **error_responses(400, 401, 404, 413, 429, 503)})
async def batch(body: BatchRequest, request: Request, who: str = Depends(principal)) -> Any:
    """Items without a session run in parallel, each in its own sandbox; items for one session run in order.
    Streamed, each result leaves as soon as it and every one before it are in."""
    state = server_state(request)
    if len(body.items) > state.config.max_batch_items:
        raise InvalidRequestError(f"a batch holds at most {state.config.max_batch_items} items")
    for item in body.items:
        if item.session_id is not None and not state.quotas.owns(who, item.session_id):
            raise NotFoundError(f"no session {item.session_id!r}")
        check_request(state, item.code, item.timeout, item.environment)  # refuse a bad item before any item runs
        if item.session_id is not None and item.environment is not None and \
                item.environment != state.engine.get_session(item.session_id).environment:
            raise InvalidRequestError(f"item for session {item.session_id}: the session runs in environment "
                                      f"{state.engine.get_session(item.session_id).environment!r}, not {item.environment!r}")
        if item.network is not None and item.session_id is not None:
            raise InvalidRequestError("a batch item for a session has the session's network; it cannot ask for its own")
        state.engine.network_policy(network_allow(item.network, state.engine.config.egress.allow))
    results: list[ExecutionResult | None] = [None] * len(body.items)
    ended = [asyncio.Event() for _ in body.items]
    """Set when an item's result is in, or it failed (its result still None)."""
    chains: dict[str, list[tuple[int, BatchItem]]] = {}
    one_shots = []
    for index, item in enumerate(body.items):
        if item.session_id is None:
            one_shots.append(_run_one(state, who, index, item, results, ended))
        else:
            chains.setdefault(item.session_id, []).append((index, item))
    chained = [_run_chain(state, who, session_id, items, results, ended) for session_id, items in chains.items()]
    if wants_stream(body.stream, request.headers.get("accept")):
        return StreamingResponse(_stream_batch(results, ended, [asyncio.ensure_future(job) for job in one_shots],
                                               [asyncio.ensure_future(job) for job in chained]),
                                 media_type=SSE_MEDIA_TYPE)
    jobs = [*one_shots, *chained]
    # Every item ends before the batch answers, even when one fails (429, a closed session): the
    # error is the answer then, and nothing is left running unseen behind it. (Cancelling the
    # others instead would kill the interpreters of the sessions in the batch.)
    outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return model_response(BatchResponse(results=[r for r in results if r is not None]))


async def _stream_batch(results: list[ExecutionResult | None], ended: list[asyncio.Event],
                        one_shots: Sequence[asyncio.Future[None]], chained: Sequence[asyncio.Future[None]]
                        ) -> AsyncIterator[bytes]:
    """The batch as events: each item's ``result`` in item order, then ``done``; or, at the first item that
    failed, once every item has ended (as without a stream: nothing is left running unseen), its ``error``.
    A client that goes away cancels the one-shot items (their sandboxes are killed, as a streamed run's are);
    the cells of sessions run on, as they would have without it."""
    jobs = [*one_shots, *chained]
    finished = False
    try:
        for index, event in enumerate(ended):
            await event.wait()
            result = results[index]
            if result is None:
                break
            yield format_event("result", {"index": index, "result": result.model_dump(mode="json")})
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is None:
            yield format_event("done", BatchResponse(results=[r for r in results if r is not None]).model_dump(mode="json"))
        elif isinstance(failure, SandlotError):
            yield format_event("error", {"error": {"type": failure.error_type, "message": str(failure)}})
        else:
            raise failure
        finished = True
    finally:
        if not finished:
            for job in one_shots:
                job.cancel()


async def _run_one(state: ServerState, who: str, index: int, item: BatchItem,
                   results: list[ExecutionResult | None], ended: list[asyncio.Event]) -> None:
    try:
        with state.quotas.run(who):
            results[index] = await state.engine.execute(
                item.code, timeout=item.timeout, tenant=who, environment=item.environment,
                network=network_allow(item.network, state.engine.config.egress.allow))
        record(state, "batch", results[index])
    finally:
        ended[index].set()


async def _run_chain(state: ServerState, who: str, session_id: str, items: list[tuple[int, BatchItem]],
                     results: list[ExecutionResult | None], ended: list[asyncio.Event]) -> None:
    try:
        session = state.engine.get_session(session_id)
        for index, item in items:
            try:
                with state.quotas.run(who):
                    results[index] = await execute_cell(session, item.code, item.timeout)
                record(state, "batch", results[index], session_id)
            finally:
                ended[index].set()
    finally:
        for index, _ in items:  # the items after one that failed never run
            ended[index].set()


# One gate per session, taken in arrival order (asyncio.Lock is fair) before the session's own
# lock: holding it means this call's cell is the one running, which the session cannot say.
_cell_gates: weakref.WeakKeyDictionary[Session, asyncio.Lock] = weakref.WeakKeyDictionary()


async def execute_cell(session: Session, code: str, timeout: float | None, on_event: EventCallback | None = None,
                       started: asyncio.Event | None = None) -> ExecutionResult:
    """Run a cell; ``started`` is set when it is this call's turn. A session deleted while the call
    waited for its turn is gone (404), not a conflict."""
    gate = _cell_gates.setdefault(session, asyncio.Lock())
    try:
        async with gate:
            if started is not None:
                started.set()
            return await session.execute(code, timeout=timeout, on_event=on_event)
    except ClosedError:
        raise NotFoundError(f"no session {session.id!r}: it was closed") from None


def check_request(state: ServerState, code: str, timeout: float | None, environment: str | None = None) -> None:
    """InvalidRequestError or TooLargeError for code, a timeout or an environment the engine would refuse."""
    check_code(code)
    state.engine.run_limits(timeout, None, environment)


def check_before_stream(state: ServerState, who: str, code: str, timeout: float | None) -> None:
    """Refuse now what the run would refuse at once: once a stream has begun, the status is 200
    and an error can only be an event, but a bad request must get its 400, 413 or 429."""
    check_request(state, code, timeout)
    state.quotas.check_run(who)


def record(state: ServerState, kind: str, result: ExecutionResult | None, session_id: str | None = None) -> None:
    if result is None:
        return
    state.metrics.record_run(kind, result.status, result.duration_ms, result.truncated)
    log_run(kind, result.id, result.status, result.duration_ms, session_id)
