"""One seam where every failure becomes the contract's error body.

``{"error": {"type": ..., "message": ...}}`` with the status each sandlot error
carries; FastAPI's validation errors become 400 (not 422), and anything
unexpected becomes a 500 that is logged, never a crash. A client that sent
something wrong never gets a 5xx.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._errors import SandlotError
from ..engine.resources import exhausted

log = logging.getLogger("sandlot.server")

_TYPES_BY_STATUS = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
                    429: "capacity", 503: "unavailable"}


def error_response(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": error_type, "message": message}}, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """What is wrong with a request, and where, for a person: the field's path, or the line and
    column of a JSON syntax error."""
    problems = []
    for error in exc.errors()[:5]:
        if error.get("type") == "json_invalid":
            return _json_problem(error, exc.body)
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        message = error.get("msg", "invalid")
        problems.append(f"{where}: {message}" if where else message)
    more = len(exc.errors()) - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "") or "invalid request"


def _json_problem(error: dict[str, object], document: object) -> str:
    loc = error.get("loc") or ()
    position = loc[-1] if isinstance(loc, tuple) and loc and isinstance(loc[-1], int) else None
    ctx = error.get("ctx")
    reason = str(ctx.get("error", "")) if isinstance(ctx, dict) else ""
    message = "the body is not valid JSON" + (f": {reason}" if reason else "")
    if position is None or not isinstance(document, str):
        return message
    line = document.count("\n", 0, position) + 1
    column = position - (document.rfind("\n", 0, position) + 1) + 1
    return f"{message} at line {line}, column {column} (character {position})"


def sandlot_error_response(exc: SandlotError) -> JSONResponse:
    """A sandlot error's answer: its status and type, and ``Retry-After`` when it has one."""
    headers = None
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, (int, float)):
        headers = {"Retry-After": str(max(1, round(retry_after)))}
    if exc.http_status >= 500 and exc.http_status != 503:  # 503 is a state (draining, restarting), not a failure
        log.error("sandlot error: %s", exc)
    return error_response(exc.http_status, exc.error_type, str(exc), headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(SandlotError)
    async def sandlot_error(_request: Request, exc: SandlotError) -> JSONResponse:
        return sandlot_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        if request.method in ("POST", "PUT") and "json" not in content_type and "octet-stream" not in content_type:
            # Kept strict on purpose: a browser page can send text/plain to a loopback server
            # without a CORS preflight, and must not be able to run code that way.
            return error_response(400, "invalid_request", "send the body as JSON with 'Content-Type: application/json'")
        return error_response(400, "invalid_request", validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, _TYPES_BY_STATUS.get(exc.status_code, "error"), message,
                              dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        ran_out = exhausted(exc)  # the host out of disk, processes or fds where the engine did not say so itself
        if ran_out is not None:
            log.warning("sandlot: %s", ran_out)
            return error_response(503, ran_out.error_type, str(ran_out), {"Retry-After": str(round(ran_out.retry_after))})
        log.exception("unexpected error")
        return error_response(500, "internal_error", "the server failed; the error was logged")
