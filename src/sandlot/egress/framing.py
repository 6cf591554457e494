"""Where a plain-HTTP response ends, read from its head (RFC 9112, section 6.3), and whether its connection may
carry another request.

The proxy needs this only to keep an upstream connection (``upstreams``): with ``Connection: close`` the end of
a response is the destination's EOF. Anything this does not know for sure (a chunked or unframed body, an
interim ``1xx``, conflicting lengths, HTTP/1.0) answers "until EOF, not again", which is what every response
was before connections were kept.
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


UNTIL_EOF = Framing(None, False)


def response_framing(head: bytes, method: str) -> Framing:
    """The framing of the response whose whole head (through its blank line) is ``head``, to a ``method``
    request."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return UNTIL_EOF
    version, status = parts[0], int(parts[1])
    if status < 200:
        return UNTIL_EOF  # an interim response: the final one follows on the same connection
    lengths: set[bytes] = set()
    close = False
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return UNTIL_EOF
        if name == b"content-length":
            lengths.update(v.strip() for v in value.split(b","))
        elif name == b"connection":
            close = close or b"close" in (token.strip().lower() for token in value.split(b","))
    reusable = version == b"HTTP/1.1" and not close
    if method == "HEAD" or status in NO_BODY_STATUSES:
        return Framing(0, reusable)
    if len(lengths) != 1:
        return UNTIL_EOF
    (text,) = lengths
    if not text.isdigit():
        return UNTIL_EOF
    return Framing(int(text), reusable)
