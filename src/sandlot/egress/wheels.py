"""The host-side wheel cache: wheels ``pip`` downloaded through the proxy, for the next install to find.

The proxy sees plain-HTTP downloads whole (HTTPS ones pass through a tunnel it cannot read), so for a GET of
a ``.whl`` from the operator's package index it keeps a copy of the body: once the response is complete, a
``200`` whose length matches, it is written under ``<cache_dir>/wheels/`` by its file name, atomically.
The next GET of that wheel is answered from the cache by the proxy, with no download. Sandboxes with
network also see the directory read-only, as pip's ``--find-links`` (``PIP_FIND_LINKS``): pip installs from
it with ``--no-index`` when the index is unreachable. (With the index reachable, pip's resolver prefers the
index's link of the same version, hence the proxy's answer.)

Only the operator's index (``index_url``; any allowed destination when it is unset) fills the cache, and
only under a wheel's own file name, so a sandbox can put there no more than that index serves.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import urllib.parse

MAX_WHEEL = 256 << 20
"""Larger downloads are passed on but not kept."""
WHEEL_NAME = re.compile(r"^[A-Za-z0-9_.+!-]+-[A-Za-z0-9_.+!-]+(-[A-Za-z0-9_.+!-]+){2,3}\.whl$")
MOUNT_POINT = "/var/cache/sandlot-wheels"
"""Where a sandbox sees the cache."""


class WheelCache:
    def __init__(self, directory: str, index_url: str | None) -> None:
        self.directory = directory
        os.makedirs(directory, mode=0o755, exist_ok=True)
        os.chmod(directory, 0o755)
        index = urllib.parse.urlsplit(index_url) if index_url else None
        self._index = (index.hostname or "", index.port or 80) if index is not None and index.scheme == "http" else None
        self.stored = 0

    def _name(self, host: str, port: int, path: str) -> str | None:
        """The wheel file a GET of ``path`` from ``host:port`` is, if it is one from the operator's index."""
        if self._index is not None and (host.lower(), port) != self._index:
            return None
        name = urllib.parse.unquote(urllib.parse.urlsplit(path).path.rsplit("/", 1)[-1])
        return name if WHEEL_NAME.match(name) else None

    def hit(self, host: str, port: int, path: str) -> str | None:
        """The cached copy of this download (its path on the host), or None."""
        name = self._name(host, port, path)
        if name is None:
            return None
        cached = os.path.join(self.directory, name)
        return cached if os.path.isfile(cached) else None

    def tee(self, host: str, port: int, path: str) -> WheelTee | None:
        """A collector for a response that may be a wheel worth keeping (None: it is not one, or it is kept)."""
        name = self._name(host, port, path)
        if name is None or os.path.exists(os.path.join(self.directory, name)):
            return None
        return WheelTee(self, name)

    def store(self, name: str, body: bytes) -> None:
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.chmod(temp, 0o644)
            os.replace(temp, os.path.join(self.directory, name))
            self.stored += 1
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


class WheelTee:
    """The bytes of one response, kept until it is known whether they are a whole wheel."""

    def __init__(self, cache: WheelCache, name: str) -> None:
        self.cache = cache
        self.name = name
        self.data = bytearray()
        self.too_big = False

    def feed(self, chunk: bytes) -> None:
        if self.too_big:
            return
        if len(self.data) + len(chunk) > MAX_WHEEL:
            self.too_big, self.data = True, bytearray()
            return
        self.data += chunk

    def finish(self) -> None:
        """Keep the body if the response was a complete ``200`` with a Content-Length (in a worker thread)."""
        if self.too_big:
            return
        head, sep, body = bytes(self.data).partition(b"\r\n\r\n")
        if not sep:
            return
        lines = head.decode("latin-1").split("\r\n")
        if len(lines[0].split(" ")) < 2 or lines[0].split(" ")[1] != "200":
            return
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if "transfer-encoding" in fields or "content-encoding" in fields:
            return
        if fields.get("content-length") != str(len(body)) or not body.startswith(b"PK"):
            return
        with contextlib.suppress(OSError):
            self.cache.store(self.name, body)
