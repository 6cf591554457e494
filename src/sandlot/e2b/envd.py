"""The daemon's plain HTTP routes (E2B port 49983): ``GET /health`` and files over ``GET/POST /files``.

Files are read and written by the host through the session's ``Workspace`` (paths resolved component by component
without following symlinks, sizes capped), so only paths under ``/home/user`` (the workspace) are served here.
Uploads come as ``multipart/form-data`` (one or more files; a part's file name is its path when no ``path`` is
given) or as ``application/octet-stream`` (one file, ``path`` in the query), as E2B's SDKs send them.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._errors import InvalidRequestError, TooLargeError
from . import scope
from .paths import e2b_path, workspace_relative


def _max_file_bytes(request: Request) -> int:
    """The server's file limit (``max_file_bytes``), as for sandlot's own file routes."""
    return scope.state(request).config.max_file_bytes


def _too_large(limit: int) -> TooLargeError:
    return TooLargeError(f"the file is over the limit of {limit} bytes")


async def health(request: Request) -> Response:
    return Response(status_code=204)  # the dispatcher answered 502 already for a sandbox that is gone


async def read_file(request: Request) -> Response:
    sandbox = scope.sandbox(request)
    relative = workspace_relative(request.query_params.get("path", ""))
    workspace = await sandbox.session.open_workspace()
    data = await asyncio.to_thread(workspace.read, relative, _max_file_bytes(request))  # off the event loop
    return Response(data, media_type="application/octet-stream")


async def write_file(request: Request) -> Response:
    sandbox = scope.sandbox(request)
    path = request.query_params.get("path")
    content_type = request.headers.get("content-type", "")
    uploads: list[tuple[str, bytes]] = []
    limit = _max_file_bytes(request)
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1000, max_fields=1000, max_part_size=limit) as form:
            for _name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    target = path if path and len(form) == 1 else (value.filename or path)
                    if not target:
                        raise InvalidRequestError("a file part needs a file name or a path")
                    data = await value.read()
                    if len(data) > limit:
                        raise _too_large(limit)
                    uploads.append((target, data))
    else:
        if not path:
            raise InvalidRequestError("'path' is required for an octet-stream upload")
        data = await request.body()
        if request.headers.get("content-encoding", "").lower() == "gzip":
            data = await asyncio.to_thread(_gunzip, data, limit)
        if len(data) > limit:
            raise _too_large(limit)
        uploads.append((path, data))
    workspace = await sandbox.session.open_workspace()
    written = []
    for target, data in uploads:
        relative = workspace_relative(target)
        if not relative:
            raise InvalidRequestError(f"{target!r} is the workspace itself, not a file")
        await asyncio.to_thread(workspace.write, relative, data)
        written.append({"name": relative.rsplit("/", 1)[-1], "type": "file", "path": e2b_path(relative)})
    return JSONResponse(written)


def _gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise InvalidRequestError(f"the gzip body is not valid: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    return out


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/files", read_file, methods=["GET"]),
    Route("/files", write_file, methods=["POST"]),
]
