"""The server name a TLS ClientHello asks for (SNI), read without terminating TLS.

Only the first record of the handshake is parsed, as hostile input: every length is checked against what
is there. Anything that is not a ClientHello is ``NotClientHello``.
"""

from __future__ import annotations

MAX_RECORD = 5 + (1 << 14) + 2048
"""A TLS record's header and the largest payload a ClientHello record can have."""


class NotClientHello(ValueError):
    """The bytes are not a well-formed TLS ClientHello."""


def record_length(header: bytes) -> int:
    """The full length of the TLS record whose 5-byte header is ``header``."""
    if len(header) < 5 or header[0] != 0x16 or header[1] != 0x03:
        raise NotClientHello("not a TLS handshake record")
    length = int.from_bytes(header[3:5], "big")
    if length > MAX_RECORD - 5:
        raise NotClientHello("TLS record too long")
    return 5 + length


def server_name(record: bytes) -> str | None:
    """The SNI host name in a ClientHello record (lower case), or None when it sends none."""
    data = memoryview(record)
    pos = 5
    if len(data) < pos + 4 or data[pos] != 0x01:
        raise NotClientHello("not a ClientHello")
    pos += 4 + 2 + 32  # handshake header, client version, random
    pos = _skip(data, pos, 1)  # session id
    pos = _skip(data, pos, 2)  # cipher suites
    pos = _skip(data, pos, 1)  # compression methods
    if pos == len(data):
        return None  # no extensions
    end = pos + 2 + _int(data, pos, 2)
    pos += 2
    if end > len(data):
        raise NotClientHello("truncated extensions")
    while pos + 4 <= end:
        kind, length = _int(data, pos, 2), _int(data, pos + 2, 2)
        body = pos + 4
        if body + length > end:
            raise NotClientHello("truncated extension")
        if kind == 0:  # server_name
            pos = body + 2  # the list's length
            while pos + 3 <= body + length:
                name_type, name_len = data[pos], _int(data, pos + 1, 2)
                if pos + 3 + name_len > body + length:
                    raise NotClientHello("truncated server name")
                if name_type == 0:
                    try:
                        return bytes(data[pos + 3:pos + 3 + name_len]).decode("ascii").lower()
                    except UnicodeDecodeError:
                        raise NotClientHello("server name is not ASCII") from None
                pos += 3 + name_len
            return None
        pos = body + length
    return None


def _int(data: memoryview, pos: int, size: int) -> int:
    if pos + size > len(data):
        raise NotClientHello("truncated ClientHello")
    return int.from_bytes(data[pos:pos + size], "big")


def _skip(data: memoryview, pos: int, size: int) -> int:
    return pos + size + _int(data, pos, size)
