"""Answers made straight from a model's JSON: one serialization per response.

``JSONResponse(model.model_dump(mode="json"))`` builds the result twice, as a
tree of dicts and then as text (``json.dumps`` in Python); pydantic writes the
JSON bytes from the model in one pass, in Rust. The bytes are the same document:
the same keys in the same order, compact, UTF-8 (tests/test_server_responses.py).
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response

JSON = "application/json"


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as a JSON response."""
    return Response(model.model_dump_json(), status_code=status_code, media_type=JSON)

