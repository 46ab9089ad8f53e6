"""The daphne fast reader (sync.compat.DaphneFrameReader) against a real daphne, byte by byte.

A hand-written WebSocket client puts exactly the bytes we choose on the
socket: several frames in one TCP write, a frame cut across two writes, a
fragmented message, a ping between two data frames, a 16-bit and a 64-bit
length, invalid UTF-8. Each must behave as autobahn alone would have made it
behave, in order; the server's ``/metrics`` says which path ran the messages
(in the socket's data callback, or in the connection's task after a queue hop).
"""

from __future__ import annotations

import asyncio
import base64
import os
import urllib.request
import zlib

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live import LiveServer

pytestmark = pytest.mark.asyncio

ON_REDIS = os.environ.get("KASAGI_TEST_SERVER_REDIS") == "1"


def client_frame(payload: bytes, *, opcode: int = 1, fin: bool = True,
                 compressed: bool = False) -> bytes:
    """One masked client frame (RFC 6455 §5.2) with a random masking key; RSV1 set
    when ``payload`` is a permessage-deflate payload."""
    mask = os.urandom(4)
    head = bytes(((0x80 if fin else 0) | (0x40 if compressed else 0) | opcode,))
    n = len(payload)
    if n < 126:
        head += bytes((0x80 | n,))
    elif n < 65536:
        head += bytes((0x80 | 126,)) + n.to_bytes(2, "big")
    else:
        head += bytes((0x80 | 127,)) + n.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def text(message: dict) -> bytes:
    return client_frame(orjson.dumps(message))


class RawSocket:
    """A WebSocket client that writes raw bytes and reads the server's frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.deflate = False

    @classmethod
    async def open(cls, server: LiveServer, *, deflate: bool = False) -> RawSocket:
        host, port = server.http_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
        writer.write(
            f"GET /sync HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n{offer}"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert (b"permessage-deflate" in head) is deflate, head
        raw = cls(reader, writer)
        raw.deflate = deflate
        return raw

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """The next server frame: (opcode, payload)."""
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        payload = await self.reader.readexactly(n)
        if b0 & 0x40:  # compressed, each frame from a fresh window (no context takeover)
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        return b0 & 0x0F, payload

    async def message(self, type_: str, timeout: float = 5.0) -> dict:
        """The next text message of ``type_`` (other data frames are skipped)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            opcode, payload = await self.frame(deadline - asyncio.get_running_loop().time())
            if opcode == 1:
                message = orjson.loads(payload)
                if message["type"] == type_:
                    return message
                assert message["type"] != "ERROR", message

    async def close(self) -> None:
        self.writer.close()


def _counters(server: LiveServer) -> dict[str, float]:
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=5) as answer:
        families = text_string_to_metric_families(answer.read().decode())
    out: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            if sample.name.endswith("_total"):
                path = sample.labels.get("path") or sample.labels.get("parser")
                out[sample.name + (f"[{path}]" if path else "")] = sample.value
    return out


async def counters(server: LiveServer) -> dict[str, float]:
    return await asyncio.to_thread(_counters, server)


def grew(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0) - before.get(name, 0)


async def joined(server: LiveServer, room_id: str) -> tuple[RawSocket, str]:
    raw = await RawSocket.open(server)
    await raw.write(text({"type": "JOIN_ROOM", "roomId": room_id, "payload": {"x": 0}}))
    full = await raw.message("FULL_STATE")
    return raw, full["payload"]["playerId"]


def update(room_id: str, **fields: object) -> bytes:
    return text({"type": "STATE_UPDATE", "roomId": room_id, "payload": fields})


async def test_frames_in_one_write_run_inline_in_order(kasagi_server, room_id):
    raw, player = await joined(kasagi_server, room_id)
    before = await counters(kasagi_server)
    await raw.write(update(room_id, x=1) + text({"type": "PING", "requestId": "p"})
                    + update(room_id, x=2))
    pong = await raw.message("PONG")
    assert pong["requestId"] == "p"
    x = None
    while x != 2:
        delta = await raw.message("DELTA_UPDATE")
        x = delta["payload"]["players"][player]["x"]
        assert x in (1, 2)
    after = await counters(kasagi_server)
    assert grew(before, after, "kasagi_reader_connections_total[daphne]") == 0
    if ON_REDIS:  # updates wait for Redis: the task runs them, and the PING behind them
        assert grew(before, after, "kasagi_messages_inline_total") == 0, (before, after)
        assert grew(before, after, "kasagi_messages_queued_total") == 3
        await raw.write(text({"type": "PING", "requestId": "q"}))  # alone: it never waits
        assert (await raw.message("PONG"))["requestId"] == "q"
        assert grew(after, await counters(kasagi_server), "kasagi_messages_inline_total") == 1
    else:
        assert grew(before, after, "kasagi_messages_inline_total") == 3, (before, after)
        assert grew(before, after, "kasagi_messages_queued_total") == 0
    await raw.close()


async def test_updates_written_with_the_join_wait_for_it(kasagi_server, room_id):
    """The JOIN goes to the task (it may wait for the directory); the updates that
    follow in the same TCP write must queue behind it, not run first (NOT_IN_ROOM)."""
    before = await counters(kasagi_server)
    raw = await RawSocket.open(kasagi_server)
    await raw.write(
        text({"type": "JOIN_ROOM", "roomId": room_id, "payload": {"x": 0}})
        + update(room_id, x=5) + update(room_id, x=6))
    full = await raw.message("FULL_STATE")  # message() fails on any ERROR frame
    player = full["payload"]["playerId"]
    x = None
    while x != 6:
        x = (await raw.message("DELTA_UPDATE"))["payload"]["players"][player]["x"]
    after = await counters(kasagi_server)
    assert grew(before, after, "kasagi_reader_connections_total[daphne]") == 1
    assert grew(before, after, "kasagi_reader_connections_total[generic]") == 0
    assert grew(before, after, "kasagi_messages_queued_total") >= 3, (before, after)
    await raw.close()


async def test_a_frame_cut_across_writes_and_a_fragmented_message(kasagi_server, room_id):
    raw, player = await joined(kasagi_server, room_id)
    frame = update(room_id, x=7)
    await raw.write(frame[:5])  # autobahn holds the start of the frame...
    await asyncio.sleep(0.05)
    await raw.write(frame[5:] + update(room_id, x=8))  # ...and parses what follows it
    x = None
    while x != 8:
        x = (await raw.message("DELTA_UPDATE"))["payload"]["players"][player]["x"]
        assert x in (7, 8)
    body = orjson.dumps({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 9}})
    await raw.write(client_frame(body[:10], fin=False)
                    + client_frame(body[10:], opcode=0) + update(room_id, x=10))
    while x != 10:
        x = (await raw.message("DELTA_UPDATE"))["payload"]["players"][player]["x"]
        assert x in (9, 10)
    await raw.close()


async def test_a_ping_between_data_frames_is_answered(kasagi_server, room_id):
    raw, player = await joined(kasagi_server, room_id)
    await raw.write(update(room_id, x=11) + client_frame(b"hi", opcode=9) + update(room_id, x=12))
    seen_pong = False
    x = None
    while x != 12 or not seen_pong:
        opcode, payload = await raw.frame()
        if opcode == 10:
            assert payload == b"hi"
            seen_pong = True
        elif opcode == 1:
            message = orjson.loads(payload)
            assert message["type"] == "DELTA_UPDATE", message
            x = message["payload"]["players"][player]["x"]
    await raw.close()


async def test_long_frames_and_their_limits(kasagi_server, room_id):
    raw, player = await joined(kasagi_server, room_id)
    await raw.write(update(room_id, x=13, note="n" * 300))  # 16-bit length, read here
    delta = await raw.message("DELTA_UPDATE")
    assert delta["payload"]["players"][player]["note"] == "n" * 300
    await raw.write(update(room_id, note="m" * 70_000))  # 64-bit length: autobahn's, too big
    opcode, payload = await raw.frame()
    error = orjson.loads(payload)
    assert (opcode, error["type"], error["payload"]["code"]) == (1, "ERROR", "PAYLOAD_TOO_LARGE")
    await raw.write(update(room_id, x=14))  # the connection lives on
    delta = await raw.message("DELTA_UPDATE")
    assert delta["payload"]["players"][player]["x"] == 14
    await raw.close()


async def test_invalid_utf8_fails_the_connection_as_autobahn_does(kasagi_server, room_id):
    raw, _ = await joined(kasagi_server, room_id)
    """autobahn fails such a connection (daphne lets it drop the TCP connection
    without a close handshake; with one the code would be 1007)."""
    await raw.write(client_frame(b'{"type": "PING", "x": "\xff"}'))
    try:
        opcode, payload = await raw.frame()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass  # dropped
    else:
        assert opcode == 8 and int.from_bytes(payload[:2], "big") == 1007, (opcode, payload)
    await raw.close()


class Deflater:
    """A client's permessage-deflate compressor: one window for the connection (the
    client keeps its context, as browsers do), each message flushed (RFC 7692 §7.2.1)."""

    def __init__(self) -> None:
        self.compressor = zlib.compressobj(wbits=-15)

    def frame(self, message: dict) -> bytes:
        data = self.compressor.compress(orjson.dumps(message))
        data += self.compressor.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        return client_frame(data[:-4], compressed=True)


async def test_compressed_frames_are_inflated_by_the_fast_reader(kasagi_server, room_id):
    raw = await RawSocket.open(kasagi_server, deflate=True)
    deflater = Deflater()
    await raw.write(deflater.frame({"type": "JOIN_ROOM", "roomId": room_id, "payload": {"x": 0}}))
    player = (await raw.message("FULL_STATE"))["payload"]["playerId"]
    before = await counters(kasagi_server)
    # five messages in one write, each compressed against the ones before it
    await raw.write(b"".join(
        deflater.frame({"type": "STATE_UPDATE", "roomId": room_id,
                        "payload": {"x": i, "note": "the same words again " * 4}})
        for i in range(1, 6)))
    x = None
    while x != 5:
        delta = await raw.message("DELTA_UPDATE")
        x = delta["payload"]["players"][player]["x"]
        assert delta["payload"]["players"][player].get("note", "the same words again " * 4) == (
            "the same words again " * 4)
    after = await counters(kasagi_server)
    assert grew(before, after, "kasagi_reader_frames_total[fast_inflated]") == 5, (before, after)
    assert grew(before, after, "kasagi_reader_frames_total[autobahn]") == 0
    # a frame cut across writes goes to autobahn, with the same window: still right
    frame = deflater.frame({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 6}})
    await raw.write(frame[:4])
    await asyncio.sleep(0.05)
    await raw.write(frame[4:] + deflater.frame(
        {"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 7}}))
    while x != 7:
        x = (await raw.message("DELTA_UPDATE"))["payload"]["players"][player]["x"]
        assert x in (6, 7)
    assert grew(after, await counters(kasagi_server), "kasagi_reader_frames_total[autobahn]") >= 1
    await raw.close()


@pytest.mark.parametrize("payload, code", [
    pytest.param(zlib.compress(b"\x00" * (5 * 1024 * 1024))[2:-4], 1009, id="past-the-cap"),
    pytest.param(b"\xff\xfe\xfd\xfc not deflate", 1007, id="corrupt"),
    pytest.param(zlib.compress(b'{"type": "PING", "x": "\xff"}')[2:-4], 1007, id="bad-utf8"),
])
async def test_a_bad_compressed_frame_fails_the_connection_as_autobahn_does(
    kasagi_server, room_id, payload, code,
):
    raw = await RawSocket.open(kasagi_server, deflate=True)
    await raw.write(Deflater().frame({"type": "JOIN_ROOM", "roomId": room_id, "payload": {}}))
    await raw.message("FULL_STATE")
    await raw.write(client_frame(payload, compressed=True))
    try:
        while True:
            opcode, body = await raw.frame()
            if opcode == 8:
                break
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass  # dropped without a close handshake
    else:
        assert int.from_bytes(body[:2], "big") == code, body
    await raw.close()
