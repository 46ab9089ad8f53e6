"""permessage-deflate for JSON clients that offer it (sync.compat.offer_deflate):
negotiated without server context takeover, frames readable by a real client, and
nothing negotiated for clients that do not offer it or speak a binary codec."""

from __future__ import annotations

import pytest
import websockets

from sync.core.merge_patch import apply_patch
from tests.wsclient import BinConn, Conn

pytestmark = pytest.mark.asyncio


def extensions(conn: Conn) -> str:
    assert conn.ws.response is not None
    return conn.ws.response.headers.get("Sec-WebSocket-Extensions", "")


async def test_a_json_client_offering_deflate_gets_it_without_server_context(
    kasagi_server, room_id,
):
    packed = await Conn.open(kasagi_server.ws_url)  # websockets offers permessage-deflate
    plain = await Conn.open(kasagi_server.ws_url, compression=None)
    assert "permessage-deflate" in extensions(packed)
    assert "server_no_context_takeover" in extensions(packed)
    assert extensions(plain) == ""
    full = await packed.join(room_id, x=0)
    plain_full = await plain.join(room_id)
    me = full["payload"]["playerId"]
    await packed.expect("PLAYER_JOINED")
    for x in range(1, 8):
        await packed.send({"type": "STATE_UPDATE", "roomId": room_id,
                           "payload": {"x": x, "text": "hello " * x}})
    await packed.send({"type": "PING", "requestId": "p"})
    assert (await packed.expect("PONG"))["requestId"] == "p"
    state, version = plain_full["payload"]["state"], plain_full["version"]
    while version < plain_full["version"] + 7:
        frame = await plain.expect("DELTA_UPDATE")
        assert frame["baseVersion"] == version
        state, version = apply_patch(state, frame["payload"]), frame["version"]
    await packed.send({"type": "RESYNC", "roomId": room_id})
    assert (await packed.expect("FULL_STATE"))["payload"]["state"] == state
    assert state["players"][me]["x"] == 7


async def test_binary_codecs_are_not_compressed(kasagi_server):
    compact = await BinConn.open(kasagi_server.ws_url)
    assert compact.ws.subprotocol == "kasagi.bin1"
    assert extensions(compact) == ""


async def test_a_client_asking_for_a_small_server_window_gets_no_compression(kasagi_server):
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    ws = await websockets.connect(kasagi_server.ws_url, extensions=[
        ClientPerMessageDeflateFactory(server_max_window_bits=10)], compression=None)
    try:
        assert ws.response.headers.get("Sec-WebSocket-Extensions", "") == ""
        await ws.send('{"type": "PING", "requestId": 1}')
        assert '"PONG"' in await ws.recv()
    finally:
        await ws.close()


async def test_the_frames_on_the_wire_are_compressed_and_decode_on_their_own(
    kasagi_server, room_id,
):
    """Raw socket: a frame has RSV1 set and inflates with a fresh window (no context)."""
    import asyncio
    import base64
    import os
    import zlib
    from urllib.parse import urlparse

    import orjson

    url = urlparse(kasagi_server.ws_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n").encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
    assert "permessage-deflate; server_no_context_takeover" in head

    async def frame() -> tuple[int, bytes]:
        first, second = await reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        return first, await reader.readexactly(length)

    mask = os.urandom(4)
    for request in ("a", "b"):
        body = orjson.dumps({"type": "PING", "requestId": request})
        writer.write(bytes((0x81, 0x80 | len(body))) + mask
                     + bytes(b ^ mask[i % 4] for i, b in enumerate(body)))
        first, payload = await frame()
        assert first == 0xC1  # FIN, RSV1 (compressed), text
        inflated = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        assert orjson.loads(inflated)["requestId"] == request
    writer.close()
