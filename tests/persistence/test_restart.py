"""A restart on the same database: rooms and session tokens come back (PROTOCOL §6, §9)."""

from __future__ import annotations

import signal

import pytest

from sync.tokens import hash_token
from tests.persistence.livedb import LiveDB, eventually
from tests.wsclient import Conn

#: These pin the in-memory store: with REDIS_URL the state of record is Redis (docs/scaling.md).
MEMORY_STORE = ""


async def update(conn: Conn, room_id: str, payload: dict, entity: str | None = None) -> int:
    message = {"type": "STATE_UPDATE", "roomId": room_id, "payload": payload}
    if entity:
        message["entityId"] = entity
    await conn.send(message)
    return (await conn.expect("DELTA_UPDATE"))["version"]


async def full_state(conn: Conn, room_id: str) -> dict:
    await conn.send({"type": "RESYNC", "roomId": room_id})
    return await conn.expect("FULL_STATE")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_clean_stop_loses_nothing(start_server, live_db: LiveDB, room_id: str, sig: int):
    # An interval far longer than the test: only the stop's flush can write the last state.
    server = start_server(
        REDIS_URL=MEMORY_STORE, KASAGI_SNAPSHOT_INTERVAL="300", KASAGI_GRACE_PERIOD="60"
    )
    alice, bob = await Conn.open(server.ws_url), await Conn.open(server.ws_url)
    joined_a = await alice.join(room_id, playerName="Alice", color="#f00")
    joined_b = await bob.join(room_id, playerName="Bob")
    await update(alice, room_id, {"x": 10, "y": 20})
    await update(bob, room_id, {"text": "hello", "tags": ["a", "b"]}, entity="doc-1")
    await update(alice, room_id, {"nested": {"deep": {"k": 1.5}}, "flag": True}, entity="e2")
    before = await full_state(alice, room_id)
    assert before["version"] == 5

    assert server.stop(sig) == 0, server.log()
    assert "Traceback" not in server.log()

    # While it is down the database holds the last state and both sessions, hashed.
    snapshot = live_db.snapshots(room_id)[0]
    assert snapshot["version"] == before["version"]
    # §14: a clean stop's snapshot is the room's last state, so it keeps its epoch
    assert snapshot["state"].pop("epoch") == {"id": before["payload"]["epoch"], "clean": True}
    assert snapshot["state"] == before["payload"]["state"]
    for joined in (joined_a, joined_b):
        row = live_db.session(hash_token(joined["payload"]["sessionToken"]))
        assert row["player_id"] == joined["payload"]["playerId"]
        assert row["ended_at"] is None
        assert row["disconnected_at"] is not None  # the stop marked them

    server.start()
    alice = await Conn.open(server.ws_url)
    resumed = await alice.join(room_id, sessionToken=joined_a["payload"]["sessionToken"])
    assert resumed["payload"]["resumed"] is True
    assert resumed["payload"]["playerId"] == joined_a["payload"]["playerId"]
    assert resumed["version"] == before["version"]
    assert resumed["payload"]["state"] == before["payload"]["state"]
    assert resumed["payload"]["sessionToken"]

    bob = await Conn.open(server.ws_url)
    resumed_b = await bob.join(room_id, sessionToken=joined_b["payload"]["sessionToken"])
    assert resumed_b["payload"]["resumed"] is True
    assert resumed_b["payload"]["playerId"] == joined_b["payload"]["playerId"]
    await alice.nothing(0.3)  # a resume changes nothing, so nobody is told

    # Versions go on from where they were, never backwards.
    carol = await Conn.open(server.ws_url)
    joined_c = await carol.join(room_id, playerName="Carol")
    assert joined_c["version"] == before["version"] + 1
    assert joined_c["payload"]["resumed"] is False
    hash_a = hash_token(joined_a["payload"]["sessionToken"])
    row = await eventually(
        lambda: (r := live_db.session(hash_a)) and r["disconnected_at"] is None and r,
        what="resume recorded",
    )
    assert row["ended_at"] is None
    for conn in (alice, bob, carol):
        await conn.close()


async def test_crash_loses_at_most_one_interval(start_server, live_db: LiveDB, room_id: str):
    server = start_server(
        REDIS_URL=MEMORY_STORE, KASAGI_SNAPSHOT_INTERVAL="0.2", KASAGI_GRACE_PERIOD="60"
    )
    conn = await Conn.open(server.ws_url)
    joined = await conn.join(room_id, playerName="A")
    value_at = {joined["version"]: None}
    for n in range(3):
        value_at[await update(conn, room_id, {"n": n}, entity="counter")] = n
    settled = max(value_at)
    # Everything older than one interval is on disk...
    await eventually(lambda: live_db.latest_version(room_id) == settled, what="settled snapshot")
    # ...and what came in the last interval may be lost.
    for n in range(3, 8):
        value_at[await update(conn, room_id, {"n": n}, entity="counter")] = n
    server.stop(signal.SIGKILL)

    server.start()
    conn = await Conn.open(server.ws_url)
    resumed = await conn.join(room_id, sessionToken=joined["payload"]["sessionToken"])
    version = resumed["version"]
    assert settled <= version <= max(value_at)
    # Whatever version came back, it is exactly the state the clients saw at that version.
    assert resumed["payload"]["state"]["entities"]["counter"] == {"n": value_at[version]}
    assert resumed["payload"]["resumed"] is True
    assert resumed["payload"]["playerId"] == joined["payload"]["playerId"]

    other = await Conn.open(server.ws_url)
    assert (await other.join(room_id, playerName="B"))["version"] == version + 1
    await conn.close()
    await other.close()


async def test_restored_player_times_out_and_its_session_ends(
    start_server, live_db: LiveDB, room_id: str
):
    server = start_server(
        REDIS_URL=MEMORY_STORE, KASAGI_SNAPSHOT_INTERVAL="0.1", KASAGI_GRACE_PERIOD="1"
    )
    gone = await Conn.open(server.ws_url)
    joined = await gone.join(room_id, playerName="Gone")
    token_hash = hash_token(joined["payload"]["sessionToken"])
    await eventually(lambda: live_db.session(token_hash), what="session row")
    assert server.stop() == 0

    server.start()
    watcher = await Conn.open(server.ws_url)
    seen = await watcher.join(room_id, playerName="Watcher")
    assert joined["payload"]["playerId"] in seen["payload"]["state"]["players"]
    left = await watcher.expect("PLAYER_LEFT", playerId=joined["payload"]["playerId"])
    assert left["payload"]["reason"] == "timeout"
    row = await eventually(
        lambda: (r := live_db.session(token_hash)) and r["ended_at"] is not None and r,
        what="session ended",
    )
    assert row["end_reason"] == "timeout"
    # A token whose player is gone joins as a new player.
    late = await Conn.open(server.ws_url)
    again = await late.join(room_id, sessionToken=joined["payload"]["sessionToken"])
    assert again["payload"]["resumed"] is False
    assert again["payload"]["playerId"] != joined["payload"]["playerId"]
    await watcher.close()
    await late.close()
