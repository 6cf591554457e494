"""Errors as E2B's SDKs read them: ``{"code": status, "message": text}``, and 501 for what sandlot does not do."""

from __future__ import annotations

from starlette.responses import JSONResponse

from .._errors import SandlotError


class NotSupported(SandlotError):
    """An E2B feature sandlot does not offer (PTYs, template builds, volumes, snapshots…): 501."""

    http_status = 501
    error_type = "not_implemented"


def error_response(exc: SandlotError) -> JSONResponse:
    headers = {}
    retry = getattr(exc, "retry_after", None)
    if retry is not None:
        headers["Retry-After"] = str(int(retry))
    return JSONResponse({"code": exc.http_status, "message": str(exc)}, status_code=exc.http_status, headers=headers)
