"""§8: every refusal is one ERROR with its code, changes nothing, keeps the socket usable
(on each codec, ``conn_type``; bad JSON text and the limits of restarted servers on JSON)."""

from __future__ import annotations

import pytest

from tests.wsclient import Conn

pytestmark = pytest.mark.asyncio


async def refused(conn: Conn, message, code: str, room_id: str | None = None) -> dict:
    """Send, expect ERROR ``code``, then prove the connection still answers PING."""
    await conn.send(message)
    error = await conn.expect("ERROR")
    assert error["payload"]["code"] == code, error
    assert isinstance(error["payload"]["message"], str) and error["payload"]["message"]
    await conn.send({"type": "PING", "requestId": "alive"})
    assert (await conn.expect("PONG"))["requestId"] == "alive"
    return error


async def current_version(conn: Conn, room_id: str) -> int:
    await conn.send({"type": "RESYNC", "roomId": room_id})
    return (await conn.expect("FULL_STATE"))["version"]


async def test_malformed_json_text(kasagi_server, room_id):
    conn = await Conn.open(kasagi_server.ws_url)
    await conn.join(room_id)
    version = await current_version(conn, room_id)
    await refused(conn, "{oops", "BAD_JSON")
    await refused(conn, "[1]", "BAD_JSON")
    assert await current_version(conn, room_id) == version


async def test_malformed_messages(kasagi_server, room_id, conn_type):
    conn = await conn_type.open(kasagi_server.ws_url)
    await conn.join(room_id)
    version = await current_version(conn, room_id)
    error = await refused(conn, {"type": "STATE_UPDATE", "roomId": room_id, "requestId": "c-17",
                                 "payload": [1]}, "BAD_MESSAGE")
    assert error["requestId"] == "c-17" and error["roomId"] == room_id
    error = await refused(conn, {"type": "TELEPORT", "roomId": room_id, "requestId": 3},
                          "UNKNOWN_TYPE")
    assert error["requestId"] == 3
    await refused(conn, {"type": "STATE_UPDATE", "roomId": "no spaces", "payload": {}},
                  "BAD_MESSAGE")
    await refused(conn, {"roomId": room_id}, "BAD_MESSAGE")
    assert await current_version(conn, room_id) == version


async def test_room_membership_errors(kasagi_server, room_id, conn_type):
    conn = await conn_type.open(kasagi_server.ws_url)
    error = await refused(conn, {"type": "STATE_UPDATE", "roomId": room_id, "requestId": "u",
                                 "payload": {"x": 1}}, "NOT_IN_ROOM")
    assert error["requestId"] == "u" and error["roomId"] == room_id
    await refused(conn, {"type": "RESYNC", "roomId": room_id}, "NOT_IN_ROOM")
    await conn.join(room_id)
    error = await refused(conn, {"type": "JOIN_ROOM", "roomId": room_id + "-b", "requestId": 8},
                          "ALREADY_IN_ROOM")
    assert error["requestId"] == 8
    await refused(conn, {"type": "LEAVE_ROOM", "roomId": room_id + "-b"}, "NOT_IN_ROOM")


async def test_update_refusals_change_no_version(kasagi_server, room_id, conn_type):
    conn = await conn_type.open(kasagi_server.ws_url)
    await conn.join(room_id, name="A")
    version = await current_version(conn, room_id)
    error = await refused(conn, {"type": "STATE_UPDATE", "roomId": room_id, "requestId": "cas",
                                 "expectedVersion": version + 5, "payload": {"x": 1}},
                          "VERSION_CONFLICT")
    assert error["payload"]["currentVersion"] == version and error["requestId"] == "cas"
    await refused(conn, {"type": "STATE_UPDATE", "roomId": room_id, "payload": {"userId": 1}},
                  "INVALID_UPDATE")
    await refused(conn, {"type": "STATE_UPDATE", "roomId": room_id,
                         "payload": {"blob": "x" * 20000}}, "PAYLOAD_TOO_LARGE")
    await refused(conn, {"type": "STATE_UPDATE", "roomId": room_id,
                         "payload": {"blob": "x" * 70000}}, "PAYLOAD_TOO_LARGE")
    # Over daphne's own 1 MiB cap too: still an ERROR, not a cut connection.
    await refused(conn, {"type": "STATE_UPDATE", "roomId": room_id,
                         "payload": {"blob": "x" * (1536 * 1024)}}, "PAYLOAD_TOO_LARGE")
    deep: dict = {}
    node = deep
    for _ in range(9):
        node["d"] = {}
        node = node["d"]
    await refused(conn, {"type": "STATE_UPDATE", "roomId": room_id, "payload": deep},
                  "PAYLOAD_TOO_LARGE")
    assert await current_version(conn, room_id) == version
    # expectedVersion that matches is applied.
    await conn.send({"type": "STATE_UPDATE", "roomId": room_id, "expectedVersion": version,
                     "payload": {"x": 1}})
    assert (await conn.expect("DELTA_UPDATE"))["version"] == version + 1


async def test_room_limits_and_access(start_server, room_id):
    server = start_server(KASAGI_MAX_PLAYERS="1", KASAGI_AUTO_CREATE_ROOMS="false")
    a = await Conn.open(server.ws_url)
    await refused(a, {"type": "JOIN_ROOM", "roomId": room_id, "requestId": "j"},
                  "ROOM_NOT_FOUND")
    closed = start_server(KASAGI_ALLOW_ANONYMOUS="false")
    anon = await Conn.open(closed.ws_url)
    await refused(anon, {"type": "JOIN_ROOM", "roomId": room_id}, "FORBIDDEN")
    full = start_server(KASAGI_MAX_PLAYERS="1")
    first, second = await Conn.open(full.ws_url), await Conn.open(full.ws_url)
    await first.join(room_id)
    await refused(second, {"type": "JOIN_ROOM", "roomId": room_id}, "ROOM_FULL")
    # A spectator is not counted against the player limit.
    assert (await second.join(room_id, spectate=True))["payload"]["playerId"] is None


async def test_rate_limit_drops_then_closes_abusers(start_server, room_id):
    server = start_server(KASAGI_RATE_LIMIT="5", KASAGI_RATE_BURST="5")
    conn = await Conn.open(server.ws_url)
    await conn.join(room_id)
    for n in range(8):
        await conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"n": n}})
    error = await conn.expect("ERROR")
    assert error["payload"]["code"] == "RATE_LIMITED" and error["roomId"] == room_id
    # Keeps flooding: closed with 1008.
    import websockets

    with pytest.raises(websockets.ConnectionClosed) as info:
        for _ in range(2000):
            await conn.send({"type": "PING"})
        for _ in range(2000):
            await conn.recv(5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
