"""The host-side wheel cache: wheels ``pip`` downloaded through the proxy, for the next install to find.

The proxy sees plain-HTTP downloads whole (HTTPS ones pass through a tunnel it cannot read), so for a GET of
a ``.whl`` from the operator's package index it keeps a copy of the body: once the response is complete, a
``200`` whose length matches, it is written under ``<cache_dir>/wheels/`` by its file name, atomically.
The next GET of that wheel is answered from the cache by the proxy, with no download. Sandboxes with
network also see the directory read-only, as pip's ``--find-links`` (``PIP_FIND_LINKS``): pip installs from
it with ``--no-index`` when the index is unreachable. (With the index reachable, pip's resolver prefers the
index's link of the same version, hence the proxy's answer.)

Only the operator's index (an ``http://`` ``index_url``) fills the cache, and only under a wheel's own file
name, so a sandbox can put there no more than that index serves; and only a GET from that index is answered
from it. With no such index nothing is kept: the cache is keyed by file name and shared by every tenant, so
filled from any allowed host it would let one run put its own bytes under the name of a wheel another run
(another tenant's) then gets from its index, or finds through ``PIP_FIND_LINKS``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import urllib.parse

MAX_WHEEL = 1 << 30
"""Larger downloads are passed on but not kept."""
MAX_HEAD = 64 * 1024
INCOMING = ".incoming-"
WHEEL_NAME = re.compile(r"^[A-Za-z0-9_.+!-]+-[A-Za-z0-9_.+!-]+(-[A-Za-z0-9_.+!-]+){2,3}\.whl$")


class WheelCache:
    def __init__(self, directory: str, index_url: str | None) -> None:
        self.directory = directory
        os.makedirs(directory, mode=0o755, exist_ok=True)
        os.chmod(directory, 0o755)
        for name in os.listdir(directory):
            if name.startswith(INCOMING):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))  # a download a stopped server left half-kept
        index = urllib.parse.urlsplit(index_url) if index_url else None
        self._index = (index.hostname or "", index.port or 80) if index is not None and index.scheme == "http" else None
        self.stored = 0

    def _name(self, host: str, port: int, path: str) -> str | None:
        """The wheel file a GET of ``path`` from ``host:port`` is, if it is one from the operator's index."""
        if self._index is None or (host.lower().rstrip("."), port) != self._index:
            return None  # not the operator's index (or there is none): never kept, never answered from here
        name = urllib.parse.unquote(urllib.parse.urlsplit(path).path.rsplit("/", 1)[-1])
        return name if WHEEL_NAME.match(name) else None

    def hit(self, host: str, port: int, path: str) -> str | None:
        """The cached copy of this download (its path on the host), or None."""
        name = self._name(host, port, path)
        if name is None:
            return None
        cached = os.path.join(self.directory, name)
        return cached if os.path.isfile(cached) else None

    def keeps(self, host: str, port: int, path: str) -> bool:
        """Whether a GET of ``path`` from ``host:port`` is one the cache would read (and may keep)."""
        return self._name(host, port, path) is not None

    def tee(self, host: str, port: int, path: str) -> WheelTee | None:
        """A collector for a response that may be a wheel worth keeping (None: it is not one, or it is kept)."""
        name = self._name(host, port, path)
        if name is None or os.path.exists(os.path.join(self.directory, name)):
            return None
        return WheelTee(self, name)


class WheelTee:
    """One response on its way to the sandbox: its head in memory, its body in a file beside the cache (not in
    the server's memory), kept under the wheel's name once it is known to be a whole ``200``."""

    def __init__(self, cache: WheelCache, name: str) -> None:
        self.cache = cache
        self.name = name
        self.head = bytearray()
        self.body_bytes = 0
        self.failed = False
        fd, self.path = tempfile.mkstemp(dir=cache.directory, prefix=INCOMING)
        self.file = os.fdopen(fd, "wb")

    def feed(self, chunk: bytes) -> None:
        if self.failed:
            return
        if not self.head.endswith(b"\r\n\r\n"):
            self.head += chunk
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                self.failed = len(self.head) > MAX_HEAD
                return
            chunk, self.head = bytes(self.head[end + 4:]), self.head[:end + 4]
        self.body_bytes += len(chunk)
        if self.body_bytes > MAX_WHEEL:
            self.failed = True
            return
        try:
            self.file.write(chunk)
        except OSError:
            self.failed = True

    def finish(self) -> None:
        """Keep the body if the response was a complete ``200`` with a Content-Length (in a worker thread)."""
        try:
            self.file.close()
            if not self.failed and self._complete():
                os.chmod(self.path, 0o644)
                os.replace(self.path, os.path.join(self.cache.directory, self.name))
                self.cache.stored += 1
        except OSError:
            pass
        finally:
            self.discard()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _complete(self) -> bool:
        lines = bytes(self.head[:-4]).decode("latin-1").split("\r\n")
        status = lines[0].split(" ")
        if len(status) < 2 or status[1] != "200":
            return False
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if "transfer-encoding" in fields or "content-encoding" in fields:
            return False
        if fields.get("content-length") != str(self.body_bytes):
            return False
        with open(self.path, "rb") as f:
            return f.read(2) == b"PK"
