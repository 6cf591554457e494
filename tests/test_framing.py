"""The channel's framing treats every byte from the sandbox as hostile."""

from __future__ import annotations

import pytest

from sandlot_runtime import framing


def test_round_trip_in_pieces() -> None:
    data = framing.encode({"t": "done", "id": 1}) + framing.encode({"t": "ready"})
    decoder = framing.FrameDecoder()
    messages = []
    for i in range(len(data)):
        messages += decoder.feed(data[i:i + 1])
    assert messages == [{"t": "done", "id": 1}, {"t": "ready"}]


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000,
                                     b"1" * 5000, b'"just a string"'])
def test_malformed_frames_raise_frame_error(payload: bytes) -> None:
    decoder = framing.FrameDecoder(max_frame=1 << 20)
    with pytest.raises(framing.FrameError):
        decoder.feed(framing.HEADER.pack(len(payload)) + payload)


def test_oversized_frame_is_refused_before_it_is_read() -> None:
    decoder = framing.FrameDecoder(max_frame=1024)
    with pytest.raises(framing.FrameError):
        decoder.feed(framing.HEADER.pack(1 << 30))
