"""The browser playground: ``/`` and ``/ui`` redirect to ``/ui/``, which serves the page; its files are under
``/ui/assets/<digest>/``.

The page is static and needs no key to load: the user enters the API key on the page, which keeps it in the
browser's session storage and sends it only in the ``Authorization`` header of the API calls it makes, the same
calls any client makes. This module only serves files; the playground's logic is in ``sandlot/ui/``.

Caching: every asset's URL holds a digest of all the assets, so one URL names one content for ever and is cached for
a year (``immutable``); the page itself names the current digest and is ``no-cache``. A URL with another digest (a
page from before an upgrade) gets ``404`` rather than new content under an old name.

The page's Content-Security-Policy is strict, because it shows model and sandbox output, which is hostile: scripts
and styles only from this origin, no inline script at all, inline ``<style>`` only with the per-response nonce (the
editor injects its styles that way), images only from here or ``data:``, network only to this origin, no plugins,
forms, ``<base>`` or framing by other sites, and Trusted Types, so that no string reaches an HTML sink unless one of
the page's two named policies made it. ``text/html`` outputs render in ``sandbox`` iframes (``srcdoc``), which
inherit this policy.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from .._errors import NotFoundError

UI_PACKAGE = "sandlot.ui"
INDEX = "index.html"
# What the page may serve, by suffix; any other file in the package (``__init__.py``) is not served.
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json",
               ".txt": "text/plain; charset=utf-8"}
IMMUTABLE = "public, max-age=31536000, immutable"
# The Trusted Types policies the page creates (ui/trusted.js) and DOMPurify's own.
TRUSTED_TYPES = "sandlot-markdown sandlot-frame dompurify"
# No Cross-Origin-Resource-Policy: the sandboxed frames of HTML outputs have an opaque origin and load frame.css.
COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str


@dataclass(frozen=True)
class Assets:
    """The playground's files, read once from the installed package."""

    digest: str
    files: dict[str, Asset]
    index: str

    def page(self, nonce: str) -> str:
        return self.index.replace("%ASSETS%", f"assets/{self.digest}").replace("%NONCE%", nonce)


@cache
def load_assets() -> Assets:
    """Every servable file under ``sandlot.ui``, and a digest over all of their names and contents.

    Read on the first request, not at import or start-up: a server that nobody opens in a browser never reads them.
    """
    files: dict[str, Asset] = {}
    _collect(resources.files(UI_PACKAGE), "", files)
    index = files.pop(INDEX, None)
    if index is None:
        raise RuntimeError(f"the playground's {INDEX} is missing from the installed package {UI_PACKAGE}")
    hasher = hashlib.sha256()
    for path in sorted(files):
        hasher.update(path.encode() + b"\0" + hashlib.sha256(files[path].body).digest())
    return Assets(digest=hasher.hexdigest()[:16], files=files, index=index.body.decode())


def _collect(directory: Traversable, prefix: str, into: dict[str, Asset]) -> None:
    for entry in directory.iterdir():
        if entry.is_dir():
            _collect(entry, f"{prefix}{entry.name}/", into)
            continue
        suffix = entry.name[entry.name.rfind("."):] if "." in entry.name else ""
        if suffix in MEDIA_TYPES:
            into[prefix + entry.name] = Asset(entry.read_bytes(), MEDIA_TYPES[suffix])


def content_security_policy(nonce: str) -> str:
    return "; ".join([
        "default-src 'none'", "script-src 'self'", f"style-src 'self' 'nonce-{nonce}'", "img-src 'self' data:",
        "connect-src 'self'", "font-src 'self'", "manifest-src 'self'", "object-src 'none'", "base-uri 'none'",
        "form-action 'none'", "frame-ancestors 'none'", "require-trusted-types-for 'script'",
        f"trusted-types {TRUSTED_TYPES}",
    ])


@router.get("/")
@router.get("/ui")
async def to_playground() -> RedirectResponse:
    # Relative, so that the redirect also works behind a proxy that serves sandlot under a path prefix.
    return RedirectResponse("ui/", status_code=307)


@router.api_route("/ui/", methods=["GET", "HEAD"])
async def playground() -> Response:
    nonce = secrets.token_urlsafe(18)
    headers = {**COMMON_HEADERS, "Content-Security-Policy": content_security_policy(nonce), "Cache-Control": "no-cache",
               "Cross-Origin-Opener-Policy": "same-origin", "X-Frame-Options": "DENY",
               "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()"}
    return Response(load_assets().page(nonce), media_type=MEDIA_TYPES[".html"], headers=headers)


@router.api_route("/ui/assets/{digest}/{path:path}", methods=["GET", "HEAD"])
async def asset(digest: str, path: str) -> Response:
    assets = load_assets()
    found = assets.files.get(path) if digest == assets.digest else None
    if found is None:
        raise NotFoundError(f"no playground asset {path!r} in version {digest!r}")
    return Response(found.body, media_type=found.media_type, headers={**COMMON_HEADERS, "Cache-Control": IMMUTABLE})
