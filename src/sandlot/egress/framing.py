"""Where a plain-HTTP response ends, read from its head (RFC 9112, section 6.3), and whether its connection may
carry another request.

The proxy needs this only to keep an upstream connection (``upstreams``): with ``Connection: close`` the end of
a response is the destination's EOF. A chunked body's end is found by ``ChunkedEnd`` as its bytes go by. Anything
this does not know for sure (an unframed body, an interim ``1xx``, conflicting lengths, HTTP/1.0) answers "until
EOF, not again", which is what every response was before connections were kept.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True)
class Framing:
    length: int | None
    """Body bytes after the head; None: the body ends when the destination closes."""
    reusable: bool
    """The connection may carry the next request once ``length`` bytes are through."""
    chunked: bool = False
    """The body is chunked (``length`` None): its end is where ``ChunkedEnd`` finds it."""


UNTIL_EOF = Framing(None, False)


MAX_LENGTH_DIGITS = 18
"""A Content-Length longer than this is not one the proxy keeps a connection after (nor one ``int`` should be
given: Python refuses a string of over 4300 digits with a ``ValueError``)."""


def response_framing(head: bytes, method: str) -> Framing:
    """The framing of the response whose whole head (through its blank line) is ``head``, to a ``method``
    request. The rules are RFC 9112's, in its order: no body after HEAD, a 1xx, 204 or 304, whatever the head
    says; then Transfer-Encoding (chunked last: its end is in its chunks, ``ChunkedEnd``; else the EOF); then one
    Content-Length."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or len(parts[1]) != 3 or not parts[1].isdigit():
        return UNTIL_EOF
    version, status = parts[0], int(parts[1])
    if status < 200:
        return UNTIL_EOF  # an interim response: the final one follows on the same connection
    lengths: set[bytes] = set()
    close = False
    codings: list[bytes] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip().lower()
        if name == b"transfer-encoding":
            codings.append(value.strip().lower())
        elif name == b"content-length":
            lengths.update(v.strip() for v in value.split(b","))
        elif name == b"connection":
            close = close or b"close" in (token.strip().lower() for token in value.split(b","))
    reusable = version == b"HTTP/1.1" and not close
    if method == "HEAD" or status in NO_BODY_STATUSES:
        return Framing(0, reusable)
    if codings:
        # Chunked last is a body whose end its chunks tell; anything else ends at EOF. With a Content-Length too
        # the message is one a smuggler writes (RFC 9112 6.3 rule 3): it is relayed to the EOF, never kept.
        if lengths or not codings[-1].endswith(b"chunked"):
            return UNTIL_EOF
        return Framing(None, reusable, chunked=True)
    if len(lengths) != 1:
        return UNTIL_EOF
    (text,) = lengths
    if not text.isdigit() or len(text) > MAX_LENGTH_DIGITS:
        return UNTIL_EOF
    return Framing(int(text), reusable)


MAX_CHUNK_LINE = 4096
"""A chunk-size line (with its extensions) or a trailer line longer than this is not one the proxy reads."""


class ChunkedEnd:
    """Finds where a chunked body ends (RFC 9112 section 7.1: size lines, data, the last chunk, trailers, CRLF) in
    its bytes as they go by, without changing or keeping them (only a partial line, at most ``MAX_CHUNK_LINE``)."""

    def __init__(self) -> None:
        self._line = bytearray()
        self._data = 0
        """Bytes of chunk data (and its CRLF) still to skip."""
        self._trailers = False
        self.malformed = False

    def feed(self, data: bytes) -> int | None:
        """How many bytes of ``data`` are the body's last ones (its end is in them), or None (not yet, or never:
        ``malformed``)."""
        at = 0
        while at < len(data) and not self.malformed:
            if self._data:
                step = min(self._data, len(data) - at)
                self._data -= step
                at += step
                continue
            newline = data.find(b"\n", at)
            if newline < 0:
                self._line += data[at:]
                if len(self._line) > MAX_CHUNK_LINE:
                    self.malformed = True
                return None
            self._line += data[at:newline + 1]
            at = newline + 1
            line, self._line = bytes(self._line), bytearray()
            if len(line) > MAX_CHUNK_LINE or not line.endswith(b"\r\n"):
                self.malformed = True
            elif self._trailers:
                if line == b"\r\n":
                    return at
            else:
                size = line[:-2].split(b";", 1)[0].strip()
                if not size or len(size) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in size):
                    self.malformed = True
                elif int(size, 16) == 0:
                    self._trailers = True
                else:
                    self._data = int(size, 16) + 2  # the data, then its CRLF
        return None
