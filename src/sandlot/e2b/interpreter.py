"""The code interpreter (E2B port 49999): ``POST /execute`` as newline-delimited JSON, and code contexts.

A cell runs in a context's session (the default context is the sandbox's own session; each context made with
``POST /contexts`` is a sandlot session of its own, so its names are its own, as in E2B, and its files too). The
stream is E2B's: ``stdout``/``stderr`` events as the cell prints (with a timestamp), a ``result`` per display
and for the last expression's value, an ``error``, then ``number_of_executions`` and ``end_of_execution``;
a ``keepalive`` line while the cell is quiet keeps proxies from closing the connection. A client that goes away
interrupts the cell (KeyboardInterrupt inside, as Jupyter's interrupt does); the session survives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .._errors import CapacityError, InvalidRequestError, NotFoundError, SandlotError
from .._models import DisplayData, ErrorOutput, ExecuteResult, ExecutionResult
from ..server.auth import Quotas
from . import scope
from .bodies import json_object
from .errors import NotSupported
from .paths import HOME, workspace_relative
from .results import error_event, result_event
from .sandboxes import Context, E2BSandbox

KEEPALIVE = 5.0
"""Seconds of silence after which the stream sends a keepalive line."""
NDJSON = "application/x-ndjson"
MAX_CONTEXTS = 16
"""Code contexts a sandbox may hold, its default one included: each is a session of its own."""


def _python_only(language: object) -> None:
    if language not in (None, "python", "py", "python3"):
        raise NotSupported(f"language {language!r}: this server runs Python only (docs/e2b.md)")


def _event(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def _timestamp() -> int:
    return time.time_ns()  # what both SDKs declare: an integer, the Unix epoch in nanoseconds


async def execute(request: Request) -> Response:
    sandbox = scope.sandbox(request)
    body = await json_object(request)
    code = body.get("code")
    if not isinstance(code, str):
        raise InvalidRequestError("'code' must be a string")
    _python_only(body.get("language"))
    if body.get("env_vars"):
        raise NotSupported("per-execution env_vars are not supported: set envs when the sandbox is created")
    context_id = body.get("context_id") or "default"
    context = sandbox.contexts.get(context_id)
    if context is None:
        raise NotFoundError(f"context {context_id!r} not found")
    quotas = scope.state(request).quotas
    quotas.check_run(sandbox.owner)  # a 429 now; the slot itself is held while the cell runs
    return StreamingResponse(_held(quotas, sandbox.owner, _run(context, code)), media_type=NDJSON)


async def _held(quotas: Quotas, owner: str, lines: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """``lines`` with a run in flight held for ``owner``, as sandlot's own execute holds one."""
    async with contextlib.aclosing(lines):  # a client gone closes the cell's stream at once: it is interrupted
        with contextlib.ExitStack() as slot:
            try:
                slot.enter_context(quotas.run(owner))
            except CapacityError as exc:  # others took the last slot since the check: said in the stream
                yield _event({"type": "error", "name": "CapacityError", "value": str(exc), "traceback": ""})
                yield _event({"type": "end_of_execution"})
                return
            async for line in lines:
                yield line


async def _run(context: Context, code: str) -> AsyncGenerator[bytes, None]:
    events: asyncio.Queue[bytes] = asyncio.Queue()
    shown_error = False

    def on_event(kind: str, payload: Any) -> None:
        nonlocal shown_error
        if kind in ("stdout", "stderr"):
            events.put_nowait(_event({"type": kind, "text": payload, "timestamp": _timestamp()}))
        elif isinstance(payload, DisplayData | ExecuteResult):
            events.put_nowait(_event(result_event(payload)))
        elif isinstance(payload, ErrorOutput):
            shown_error = True
            events.put_nowait(_event(error_event(payload)))

    session = context.session
    task = asyncio.get_running_loop().create_task(session.execute(code, on_event=on_event))
    finished = False
    try:
        while not task.done() or not events.empty():
            getter = asyncio.ensure_future(events.get())
            done, _ = await asyncio.wait({getter, task}, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
                continue
            getter.cancel()
            if not done:
                yield _event({"type": "keepalive"})
        try:
            result = task.result()
        except SandlotError as exc:
            yield _event({"type": "error", "name": type(exc).__name__, "value": str(exc), "traceback": ""})
        else:
            for line in _closing_events(result, shown_error):
                yield line
        finished = True
        yield _event({"type": "end_of_execution"})
    finally:
        if not finished and not task.done():
            # The client went away (or its timeout passed): interrupt the cell, let it end in the background.
            await session.interrupt()
            task.add_done_callback(_consume)


def _closing_events(result: ExecutionResult, shown_error: bool) -> list[bytes]:
    lines = []
    if result.error is not None and not shown_error:
        lines.append(_event(error_event(result.error)))
    elif result.status in ("timeout", "memory", "killed") and not shown_error:
        name = {"timeout": "TimeoutError", "memory": "MemoryError", "killed": "SandboxKilled"}[result.status]
        lines.append(_event({"type": "error", "name": name, "value": f"the cell ended with status {result.status!r}",
                             "traceback": ""}))
    if result.execution_count is not None:
        lines.append(_event({"type": "number_of_executions", "execution_count": result.execution_count}))
    return lines


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _context_json(context: Context) -> dict[str, Any]:
    return {"id": context.id, "language": context.language, "cwd": context.cwd}


async def create_context(request: Request) -> Response:
    sandbox = scope.sandbox(request)
    body = await json_object(request)
    _python_only(body.get("language"))
    cwd = body.get("cwd") or HOME
    if not isinstance(cwd, str):
        raise InvalidRequestError("'cwd' must be a string")
    relative = workspace_relative(cwd)
    if len(sandbox.contexts) >= MAX_CONTEXTS:
        raise CapacityError(f"a sandbox holds at most {MAX_CONTEXTS} code contexts: remove one first")
    context = Context(secrets.token_hex(8), await _new_session(request, sandbox), cwd=cwd)
    try:
        if relative:  # before the context is registered: one that cannot get there is closed, not left behind
            await _chdir(context, relative)
    except BaseException:
        with contextlib.suppress(SandlotError):
            await scope.registry(request).engine.close_session(context.session.id)
        raise
    if len(sandbox.contexts) >= MAX_CONTEXTS or sandbox.session.closed:  # others were made meanwhile, or it ended
        with contextlib.suppress(SandlotError):
            await scope.registry(request).engine.close_session(context.session.id)
        if sandbox.session.closed:
            raise NotFoundError(f"sandbox {sandbox.id!r} ended while the context was made")
        raise CapacityError(f"a sandbox holds at most {MAX_CONTEXTS} code contexts: remove one first")
    sandbox.contexts[context.id] = context
    return JSONResponse(_context_json(context))


async def _new_session(request: Request, sandbox: E2BSandbox) -> Any:
    state = scope.state(request)
    with state.quotas.new_session(sandbox.owner):  # a context is a session: it counts against the key's quota
        session = await scope.registry(request).engine.create_session(env=sandbox.env, owner=sandbox.owner)
        state.quotas.add_session(sandbox.owner, session.id)
    return session


async def _chdir(context: Context, relative: str) -> None:
    result = await context.session.execute(f"import os as _os; _os.makedirs({relative!r}, exist_ok=True); "
                                           f"_os.chdir({relative!r}); del _os")
    if result.status != "ok":
        raise InvalidRequestError(f"cannot use {context.cwd!r} as the context's working directory")


async def list_contexts(request: Request) -> Response:
    return JSONResponse([_context_json(c) for c in scope.sandbox(request).contexts.values()])


def _context(request: Request) -> Context:
    context = scope.sandbox(request).contexts.get(request.path_params["context_id"])
    if context is None:
        raise NotFoundError(f"context {request.path_params['context_id']!r} not found")
    return context


async def delete_context(request: Request) -> Response:
    sandbox, context = scope.sandbox(request), _context(request)
    if context.id == "default":
        raise InvalidRequestError("the default context lives as long as its sandbox")
    del sandbox.contexts[context.id]
    with contextlib.suppress(SandlotError):
        await scope.registry(request).engine.close_session(context.session.id)
    return Response(status_code=204)


async def restart_context(request: Request) -> Response:
    """A fresh interpreter for the context: its names are gone (a created context's files go with its session)."""
    sandbox, context = scope.sandbox(request), _context(request)
    if context.id == "default":
        raise NotSupported("restarting the default context is not supported: create a context of your own")
    old = context.session
    context.session = await _new_session(request, sandbox)
    with contextlib.suppress(SandlotError):
        await scope.registry(request).engine.close_session(old.id)
    relative = workspace_relative(context.cwd)
    if relative:
        await _chdir(context, relative)
    return Response(status_code=204)


routes = [
    Route("/execute", execute, methods=["POST"]),
    Route("/contexts", create_context, methods=["POST"]),
    Route("/contexts", list_contexts, methods=["GET"]),
    Route("/contexts/{context_id}", delete_context, methods=["DELETE"]),
    Route("/contexts/{context_id}/restart", restart_context, methods=["POST"]),
]
