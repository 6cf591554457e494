"""The channel's wire format: length-prefixed JSON objects.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON that
must decode to an object. Both ends use this module; the host treats every
frame it receives as hostile, so the decoder enforces a maximum size and turns
every kind of malformed input into ``FrameError`` (never another exception).

Messages carry a ``"t"`` (type) field; requests in either direction carry an
``"id"`` and their replies echo it, so calls can flow both ways at once.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 16 << 20


class FrameError(Exception):
    """The peer sent something that is not a valid frame."""


def encode(message: dict[str, Any]) -> bytes:
    # "replace": text from user code may hold lone surrogates, which are not UTF-8; they
    # must not make the frame (and with it the interpreter) fail.
    payload = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")
    return HEADER.pack(len(payload)) + payload


def decode_payload(payload: bytes) -> dict[str, Any]:
    try:
        message = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise FrameError(f"invalid JSON in frame: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise FrameError("a frame must hold a JSON object")
    return message


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get whole messages back."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > self._max_frame:
                raise FrameError(f"frame of {length} bytes exceeds the limit of {self._max_frame}")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[HEADER.size:end])
            del self._buffer[:end]
            messages.append(decode_payload(payload))
        return messages

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)


def read_message(sock: socket.socket, max_frame: int = DEFAULT_MAX_FRAME) -> dict[str, Any] | None:
    """Blocking read of one message; ``None`` at a clean end of stream."""
    header = _read_exactly(sock, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > max_frame:
        raise FrameError(f"frame of {length} bytes exceeds the limit of {max_frame}")
    payload = _read_exactly(sock, length)
    if payload is None:
        raise FrameError("stream ended inside a frame")
    return decode_payload(payload)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            if chunks:
                raise FrameError("stream ended inside a frame")
            return None
        chunks += chunk
    return bytes(chunks)
