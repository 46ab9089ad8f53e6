"""Room rows and snapshots are written in the background, and pruned."""

from __future__ import annotations

import os

from tests.persistence.livedb import LiveDB, eventually
from tests.wsclient import Conn


async def test_auto_created_room_gets_a_row(kasagi_server, live_db: LiveDB, room_id: str):
    conn = await Conn.open(kasagi_server.ws_url)
    await conn.join(room_id, playerName="A")
    room = live_db.room(room_id)  # written before FULL_STATE: activation creates it
    assert room is not None
    assert room["owner_id"] is None
    assert room["visibility"] == "public"
    assert room["room_type"] == "freeform"
    assert room["closed_at"] is None
    await conn.close()


async def test_changes_are_snapshotted_and_pruned(start_server, live_db: LiveDB, room_id: str):
    server = start_server(KASAGI_SNAPSHOT_INTERVAL="0.1", KASAGI_SNAPSHOTS_KEPT="3")
    conn = await Conn.open(server.ws_url)
    full = await conn.join(room_id, playerName="A")
    version = full["version"]
    await eventually(lambda: live_db.latest_version(room_id) == version, what="join snapshot")

    for n in range(6):
        await conn.send({
            "type": "STATE_UPDATE", "roomId": room_id, "entityId": "doc", "payload": {"n": n},
        })
        version = (await conn.expect("DELTA_UPDATE"))["version"]
        # Each change waits for its own snapshot, so none is coalesced with the next.
        await eventually(
            lambda v=version: live_db.latest_version(room_id) == v, what=f"snapshot v{version}"
        )

    snapshots = live_db.snapshots(room_id)
    assert [s["version"] for s in snapshots] == [version, version - 1, version - 2]
    await conn.send({"type": "RESYNC", "roomId": room_id})
    current = await conn.expect("FULL_STATE")
    assert current["version"] == version
    epoch = snapshots[0]["state"].pop("epoch", None)
    if os.environ.get("KASAGI_TEST_SERVER_REDIS") != "1":  # on Redis the epoch is in Redis
        assert epoch["id"] == current["payload"]["epoch"]  # §14
    assert snapshots[0]["state"] == current["payload"]["state"]
    assert snapshots[0]["state"]["entities"]["doc"] == {"n": 5}
    assert snapshots[1]["state"]["entities"]["doc"] == {"n": 4}
    assert live_db.room(room_id)["last_activity_at"] is not None
    await conn.close()


async def test_no_change_no_snapshot(start_server, live_db: LiveDB, room_id: str):
    server = start_server(KASAGI_SNAPSHOT_INTERVAL="0.1")
    conn = await Conn.open(server.ws_url)
    full = await conn.join(room_id, playerName="A")
    await eventually(lambda: live_db.latest_version(room_id) == full["version"])
    # A no-op update and pings change nothing: still exactly one snapshot.
    await conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"playerName": "A"}})
    await conn.send({"type": "PING", "requestId": "p"})
    await conn.expect("PONG")
    await conn.nothing(0.5)
    assert [s["version"] for s in live_db.snapshots(room_id)] == [full["version"]]
    await conn.close()
