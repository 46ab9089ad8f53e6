"""§1: MessagePack in binary frames for clients that offer ``kasagi.msgpack``."""

from __future__ import annotations

import msgpack
import pytest

from sync.core.merge_patch import apply_patch
from tests.wsclient import Conn, MsgpackConn

pytestmark = pytest.mark.asyncio


async def test_subprotocol_is_negotiated_and_replies_are_binary(kasagi_server, room_id):
    conn = await MsgpackConn.open(kasagi_server.ws_url)
    assert conn.ws.subprotocol == "kasagi.msgpack"
    full = await conn.join(room_id, name="ann", x=1)
    assert full["payload"]["state"]["players"][full["payload"]["playerId"]]["x"] == 1
    await conn.send({"type": "PING", "requestId": 7})
    assert (await conn.expect("PONG"))["requestId"] == 7
    assert all(conn.binary)


async def test_plain_clients_keep_json_text(kasagi_server):
    conn = await Conn.open(kasagi_server.ws_url)
    assert conn.ws.subprotocol is None
    await conn.send({"type": "PING"})
    raw = await conn.ws.recv()
    assert isinstance(raw, str) and raw.startswith("{")


async def follow(conn: Conn, full: dict, until: int) -> dict:
    """Apply the chain after ``full`` until version ``until``; the state reached."""
    state, version = full["payload"]["state"], full["version"]
    while version < until:
        frame = await conn.recv()
        if frame["type"] in ("DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT"):
            assert frame["baseVersion"] == version, frame
            state, version = apply_patch(state, frame["payload"] if frame["type"] ==
                                         "DELTA_UPDATE" else {}), frame["version"]
            if frame["type"] == "PLAYER_JOINED":
                state["players"][frame["payload"]["playerId"]] = frame["payload"]["state"]
    return state


async def test_json_and_msgpack_members_see_the_same_changes(kasagi_server, room_id):
    packed = await MsgpackConn.open(kasagi_server.ws_url)
    plain = await Conn.open(kasagi_server.ws_url)
    packed_full = await packed.join(room_id, x=0)
    me = packed_full["payload"]["playerId"]
    plain_full = await plain.join(room_id)
    for x in range(1, 6):
        await packed.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": x}})
    await plain.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "flag",
                      "payload": {"owner": "plain", "pos": [1.5, -2]}})
    target = plain_full["version"] + 6
    seen_by_plain = await follow(plain, plain_full, target)
    seen_by_packed = await follow(packed, packed_full, target)  # includes plain's PLAYER_JOINED
    assert seen_by_packed == seen_by_plain
    assert seen_by_plain["players"][me]["x"] == 5
    assert seen_by_plain["entities"]["flag"] == {"owner": "plain", "pos": [1.5, -2]}
    assert any(f["type"] == "DELTA_UPDATE" for f in packed.seen) and all(packed.binary)


@pytest.mark.parametrize("raw, why", [
    (b"\xc1", "never-used byte"),
    (msgpack.packb([1, 2]), "not a map"),
    (msgpack.packb({"type": "PING", "payload": {"b": b"\x00\x01"}}), "bytes value"),
    (msgpack.packb({"type": "PING", "payload": {"n": float("nan")}}), "NaN"),
    (msgpack.packb({"type": "PING", "payload": {"i": float("inf")}}), "Infinity"),
    (msgpack.packb({"type": "PING", "payload": {b"k": 1}}), "bytes key"),
    (msgpack.packb({"type": "PING", "payload": {"t": msgpack.ExtType(5, b"x")}}), "ext type"),
])
async def test_what_json_cannot_carry_is_bad_json(kasagi_server, room_id, raw, why):
    conn = await MsgpackConn.open(kasagi_server.ws_url)
    await conn.join(room_id)
    await conn.send({"type": "RESYNC", "roomId": room_id})
    version = (await conn.expect("FULL_STATE"))["version"]
    bad = raw if why in ("never-used byte", "not a map") else msgpack.packb(
        {**msgpack.unpackb(raw, strict_map_key=False), "type": "STATE_UPDATE",
         "roomId": room_id})
    await conn.send(bad)
    error = await conn.expect("ERROR")
    assert error["payload"]["code"] == "BAD_JSON", (why, error)
    await conn.send({"type": "RESYNC", "roomId": room_id})
    assert (await conn.expect("FULL_STATE"))["version"] == version  # nothing changed
    assert all(conn.binary)


async def test_json_text_still_accepted_on_a_msgpack_connection(kasagi_server, room_id):
    conn = await MsgpackConn.open(kasagi_server.ws_url)
    await conn.ws.send('{"type": "PING", "requestId": "t"}')
    pong = await conn.expect("PONG")
    assert pong["requestId"] == "t" and conn.binary[-1]
