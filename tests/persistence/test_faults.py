"""A database that fails is logged and retried; the rooms never notice."""

from __future__ import annotations

import itertools
import os

from sync.tokens import hash_token
from tests.persistence.livedb import LiveDB, eventually
from tests.wsclient import Conn

_names = itertools.count(1)


async def update(conn: Conn, room_id: str, n: int) -> int:
    await conn.send({
        "type": "STATE_UPDATE", "roomId": room_id, "entityId": "doc", "payload": {"n": n},
    })
    return (await conn.expect("DELTA_UPDATE"))["version"]


async def test_failing_writes_are_retried_and_rooms_keep_working(
    throwaway_database_url: str, start_server, room_id: str
):
    db = LiveDB(throwaway_database_url)
    server = start_server(DATABASE_URL=throwaway_database_url, KASAGI_SNAPSHOT_INTERVAL="0.1")
    alice = await Conn.open(server.ws_url)
    await alice.join(room_id, playerName="A")
    version = await update(alice, room_id, 0)
    await eventually(lambda: db.latest_version(room_id) == version, what="first snapshot")

    # Pull the snapshot table from under the writer.
    db.rows("ALTER TABLE rooms_roomsnapshot RENAME TO rooms_roomsnapshot_away")
    for n in range(1, 6):
        version = await update(alice, room_id, n)
    await eventually(lambda: "persistence write failed" in server.log(), what="error logged")
    # The room works all along: updates, pings, and a newcomer who joins and writes.
    bob = await Conn.open(server.ws_url)
    joined_b = await bob.join(room_id, playerName="B")
    assert joined_b["version"] == version + 1
    assert joined_b["payload"]["state"]["entities"]["doc"] == {"n": 5}
    await bob.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 1}})
    version = (await alice.expect("DELTA_UPDATE"))["version"]
    await alice.send({"type": "PING", "requestId": "p"})
    await alice.expect("PONG")

    # The database comes back: the retries catch up with everything.
    db.rows("ALTER TABLE rooms_roomsnapshot_away RENAME TO rooms_roomsnapshot")
    await eventually(lambda: db.latest_version(room_id) == version, what="caught up")
    assert db.snapshots(room_id)[0]["state"]["players"][joined_b["payload"]["playerId"]] == {
        "playerName": "B", "x": 1,
    }
    await eventually(
        lambda: db.session(hash_token(joined_b["payload"]["sessionToken"])), what="B's session"
    )
    await eventually(lambda: "persistence writes recovered" in server.log(), what="recovery")
    for conn in (alice, bob):
        await conn.close()
    assert server.stop() == 0


async def test_a_row_the_database_refuses_is_dropped_alone(
    start_server, live_db: LiveDB, room_id: str
):
    server = start_server(KASAGI_SNAPSHOT_INTERVAL="0.1")
    host = await Conn.open(server.ws_url)
    await host.join(room_id, playerName="Host")
    # A user authenticated at the handshake, deleted before it joins: its session row
    # would point at no user, which the foreign key refuses.
    user_pk, key = live_db.make_user(f"doomed-{os.getpid()}-{next(_names)}")
    doomed = await Conn.open(f"{server.ws_url}?token={key}")
    live_db.django(f"from django.contrib.auth import get_user_model\n"
                   f"get_user_model().objects.filter(pk={user_pk}).delete()\n")
    joined = await doomed.join(room_id, playerName="Doomed")

    # The snapshot of that same change is written; the refused row alone is dropped.
    await eventually(lambda: live_db.latest_version(room_id) == joined["version"])
    await eventually(lambda: "refused by the database" in server.log(), what="refusal logged")
    assert live_db.session(hash_token(joined["payload"]["sessionToken"])) is None
    await doomed.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 2}})
    version = (await host.expect("DELTA_UPDATE"))["version"]
    await eventually(lambda: live_db.latest_version(room_id) == version, what="later snapshot")
    for conn in (host, doomed):
        await conn.close()
