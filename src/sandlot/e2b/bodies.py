"""The JSON object body of an E2B REST request, read by one rule for every route."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from .._errors import InvalidRequestError


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; an empty (or blank) body is ``{}``, anything else not an object is a 400."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise InvalidRequestError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("the body must be a JSON object")
    return body
