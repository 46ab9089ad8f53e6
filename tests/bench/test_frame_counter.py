"""``bench.load.FrameCounter``: a passive client's frames counted from their headers,
however the stream is cut into reads, with control frames handed back whole."""

from __future__ import annotations

from types import SimpleNamespace

from bench.load import FrameCounter


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = False) -> bytes:
    """One server WebSocket frame (RFC 6455 §5.2), lengths in all three forms."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    mask = 0x80 if masked else 0
    if length < 126:
        head = bytes((first, mask | length))
    elif length < 65536:
        head = bytes((first, mask | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((first, mask | 127)) + length.to_bytes(8, "big")
    return head + (b"\0\0\0\0" if masked else b"") + payload


def counter() -> tuple[FrameCounter, SimpleNamespace]:
    worker = SimpleNamespace(frames=0, bytes_rx=0)
    return FrameCounter(worker), worker  # type: ignore[arg-type]


STREAM = [
    frame(1, b'{"type":"DELTA_UPDATE"}'),
    frame(2, bytes(300)),  # a 16-bit length
    frame(9, b"ping!"),  # a ping: the library must see it, whole
    frame(1, bytes(70_000)),  # a 64-bit length
    frame(10, b""),  # an empty pong
    frame(2, b""),
]
DATA = b"".join(STREAM)


def test_every_frame_is_counted_however_the_reads_cut_the_stream() -> None:
    for step in (1, 2, 3, 7, 126, 4096, len(DATA)):
        count, worker = counter()
        controls: list[bytes] = []
        for start in range(0, len(DATA), step):
            controls += count.feed(DATA[start:start + step])
        assert worker.frames == 4, step
        assert worker.bytes_rx == 23 + 300 + 70_000 + 0, step
        assert controls == [STREAM[2], STREAM[4]], step
        assert not count.broken


def test_a_masked_or_fragmented_frame_stops_the_counting() -> None:
    for bad in (frame(1, b"x", masked=True), frame(1, b"x", fin=False), frame(3, b"x")):
        count, worker = counter()
        count.feed(STREAM[0] + bad + STREAM[0])
        assert count.broken
        assert worker.frames == 1  # the frame before it, nothing after
