"""§6 disconnection: grace period, resume by token, timeout, dead sockets, Origin (§7).

The resumes run on each codec (``conn_type``); the timed ones (grace, keepalive) on JSON.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket

import pytest
import websockets

from tests.wsclient import Conn

pytestmark = pytest.mark.asyncio


async def drop(conn: Conn) -> None:
    """Close the TCP connection without a WebSocket close handshake (a crash)."""
    conn.ws.transport.abort()
    await asyncio.sleep(0.1)


async def test_abrupt_close_then_resume_tells_nobody(kasagi_server, room_id, conn_type):
    a = await conn_type.open(kasagi_server.ws_url)
    b = await conn_type.open(kasagi_server.ws_url)
    full = await a.join(room_id, name="A")
    await b.join(room_id, name="B")
    await a.expect("PLAYER_JOINED")
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 7}})
    await b.expect("DELTA_UPDATE")
    version = (await a.expect("DELTA_UPDATE"))["version"]
    await drop(a)
    await b.nothing(0.5)  # the player stays; nobody is told
    again = await conn_type.open(kasagi_server.ws_url)
    resumed = await again.join(room_id, sessionToken=full["payload"]["sessionToken"])
    payload = resumed["payload"]
    assert payload["resumed"] is True
    assert payload["playerId"] == full["payload"]["playerId"]
    assert payload["state"]["players"][payload["playerId"]]["x"] == 7
    assert resumed["version"] == version  # a resume changes no state
    assert isinstance(payload["sessionToken"], str)
    await b.nothing(0.3)
    # The resumed player writes as before.
    await again.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 8}})
    assert (await b.expect("DELTA_UPDATE"))["baseVersion"] == version


async def test_resume_takes_over_a_socket_still_thought_alive(kasagi_server, room_id, conn_type):
    a = await conn_type.open(kasagi_server.ws_url)
    full = await a.join(room_id)
    again = await conn_type.open(kasagi_server.ws_url)
    resumed = await again.join(room_id, sessionToken=full["payload"]["sessionToken"])
    assert resumed["payload"]["playerId"] == full["payload"]["playerId"]
    await again.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 1}})
    await again.expect("DELTA_UPDATE")
    await a.nothing(0.3)  # the old socket is no longer a member


async def test_unknown_or_foreign_token_joins_as_a_new_player(kasagi_server, room_id, conn_type):
    a = await conn_type.open(kasagi_server.ws_url)
    full = await a.join(room_id + "-other")
    b = await conn_type.open(kasagi_server.ws_url)
    for token in ("not-a-token", full["payload"]["sessionToken"]):
        joined = await b.join(room_id, sessionToken=token)
        assert joined["payload"]["resumed"] is False
        assert joined["payload"]["playerId"] != full["payload"]["playerId"]
        assert token not in str(joined["payload"]["state"])
        await b.send({"type": "LEAVE_ROOM", "roomId": room_id})


async def test_grace_period_runs_out_with_player_left_timeout(start_server, room_id):
    server = start_server(KASAGI_GRACE_PERIOD="1")
    a = await Conn.open(server.ws_url)
    b = await Conn.open(server.ws_url)
    full = await a.join(room_id)
    await b.join(room_id)
    await drop(a)
    left = await b.expect("PLAYER_LEFT", timeout=5)
    assert left["payload"] == {"playerId": full["payload"]["playerId"], "reason": "timeout"}
    # The token no longer resumes.
    late = await Conn.open(server.ws_url)
    joined = await late.join(room_id, sessionToken=full["payload"]["sessionToken"])
    assert joined["payload"]["resumed"] is False


async def test_dead_socket_is_detected_by_keepalive(start_server, room_id):
    """A peer that stops answering pings is disconnected; one that answers is kept."""
    server = start_server(ping=(1, 2), KASAGI_GRACE_PERIOD="1")
    idle = await Conn.open(server.ws_url)  # websockets answers pings itself
    await idle.join(room_id)
    watcher = await Conn.open(server.ws_url)
    await watcher.join(room_id)
    dead_id = await join_raw_and_go_silent(server.port, room_id)
    left = await watcher.expect("PLAYER_LEFT", timeout=15)
    assert left["payload"] == {"playerId": dead_id, "reason": "timeout"}
    await asyncio.sleep(1)
    await idle.send({"type": "PING", "requestId": "still-here"})
    assert (await idle.expect("PONG"))["requestId"] == "still-here"


async def join_raw_and_go_silent(port: int, room_id: str) -> str:
    """Handshake and join over a bare socket, then never read again (a frozen peer)."""
    import orjson

    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /sync HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    sock.recv(4096)
    body = orjson.dumps({"type": "JOIN_ROOM", "roomId": room_id, "payload": {}})
    mask = os.urandom(4)
    header = bytes([0x81, 0x80 | len(body)]) + mask
    sock.sendall(header + bytes(b ^ mask[i % 4] for i, b in enumerate(body)))
    await asyncio.sleep(0.3)
    data = sock.recv(65536)
    start = data.index(b"{")
    full = orjson.loads(data[start:data.rindex(b"}") + 1])
    _silent_sockets.append(sock)  # kept open, never read: pings go unanswered
    return full["payload"]["playerId"]


_silent_sockets: list[socket.socket] = []


async def test_origin_rule(kasagi_server):
    ok = await websockets.connect(kasagi_server.ws_url, origin="http://127.0.0.1:8080")
    await ok.close()
    no_origin = await websockets.connect(kasagi_server.ws_url)
    await no_origin.close()
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(kasagi_server.ws_url, origin="https://evil.example")
    assert info.value.response.status_code == 403
