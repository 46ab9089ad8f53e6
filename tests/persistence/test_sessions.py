"""Session tokens are stored hashed and follow their player; room rows decide joins."""

from __future__ import annotations

import itertools
import os

from sync.tokens import hash_token
from tests.persistence.livedb import LiveDB, eventually
from tests.wsclient import Conn

_names = itertools.count(1)


def username() -> str:
    return f"persist-{os.getpid()}-{next(_names)}"


async def test_session_row_holds_only_the_hash(start_server, live_db: LiveDB, room_id: str):
    server = start_server(KASAGI_SNAPSHOT_INTERVAL="0.1")
    conn = await Conn.open(server.ws_url)
    joined = await conn.join(room_id, playerName="A")
    token = joined["payload"]["sessionToken"]
    token_hash = hash_token(token)
    row = await eventually(lambda: live_db.session(token_hash), what="session row")
    assert row["player_id"] == joined["payload"]["playerId"]
    assert row["user_id"] is None
    assert row["ended_at"] is None and row["disconnected_at"] is None
    assert row["last_seen_at"] is not None
    await eventually(lambda: live_db.snapshots(room_id), what="snapshot")
    stored = repr(live_db.sessions(room_id)) + repr(live_db.snapshots(room_id))
    assert token not in stored
    assert token_hash in stored

    await conn.close()  # no LEAVE_ROOM: the grace period starts
    await eventually(
        lambda: live_db.session(token_hash)["disconnected_at"] is not None, what="disconnect"
    )
    conn = await Conn.open(server.ws_url)
    resumed = await conn.join(room_id, sessionToken=token)
    assert resumed["payload"]["resumed"] is True
    await eventually(
        lambda: live_db.session(token_hash)["disconnected_at"] is None, what="reconnect"
    )
    await conn.send({"type": "LEAVE_ROOM", "roomId": room_id})
    row = await eventually(
        lambda: (r := live_db.session(token_hash)) and r["ended_at"] is not None and r,
        what="session ended",
    )
    assert row["end_reason"] == "left"
    await conn.close()


async def test_authenticated_player_owns_the_room_it_creates(
    kasagi_server, live_db: LiveDB, room_id: str
):
    user_pk, key = live_db.make_user(username())
    conn = await Conn.open(f"{kasagi_server.ws_url}?token={key}")
    joined = await conn.join(room_id, playerName="Owner")
    assert live_db.room(room_id)["owner_id"] == user_pk
    token_hash = hash_token(joined["payload"]["sessionToken"])
    row = await eventually(lambda: live_db.session(token_hash), what="session row")
    assert row["user_id"] == user_pk
    await conn.close()


async def test_closed_room_refuses_join(kasagi_server, live_db: LiveDB, room_id: str):
    live_db.django(
        "from django.utils import timezone\n"
        "from rooms.models import Room\n"
        f"Room.objects.create(room_id={room_id!r}, closed_at=timezone.now())\n"
    )
    conn = await Conn.open(kasagi_server.ws_url)
    await conn.send({"type": "JOIN_ROOM", "roomId": room_id, "requestId": 7, "payload": {}})
    error = await conn.expect("ERROR")
    assert error["payload"]["code"] == "ROOM_CLOSED"
    assert error["requestId"] == 7
    # Still refused once the room is known to be closed, and the socket stays open.
    await conn.send({"type": "JOIN_ROOM", "roomId": room_id, "payload": {}})
    assert (await conn.expect("ERROR"))["payload"]["code"] == "ROOM_CLOSED"
    await conn.send({"type": "PING", "requestId": "still-open"})
    await conn.expect("PONG")
    await conn.close()


async def test_room_row_settings_apply(kasagi_server, live_db: LiveDB, room_id: str):
    member_pk, member_key = live_db.make_user(username())
    _, stranger_key = live_db.make_user(username())
    live_db.django(
        "from rooms.models import Room\n"
        f"room = Room.objects.create(room_id={room_id!r}, visibility='private', max_players=1)\n"
        f"room.members.add({member_pk})\n"
    )
    anonymous = await Conn.open(kasagi_server.ws_url)
    await anonymous.send({"type": "JOIN_ROOM", "roomId": room_id, "payload": {}})
    assert (await anonymous.expect("ERROR"))["payload"]["code"] == "FORBIDDEN"
    stranger = await Conn.open(f"{kasagi_server.ws_url}?token={stranger_key}")
    await stranger.send({"type": "JOIN_ROOM", "roomId": room_id, "payload": {}})
    assert (await stranger.expect("ERROR"))["payload"]["code"] == "FORBIDDEN"

    member = await Conn.open(f"{kasagi_server.ws_url}?token={member_key}")
    joined = await member.join(room_id, playerName="M")
    assert joined["payload"]["state"]["players"][joined["payload"]["playerId"]]["userId"] == (
        member_pk
    )
    again = await Conn.open(f"{kasagi_server.ws_url}?token={member_key}")
    await again.send({"type": "JOIN_ROOM", "roomId": room_id, "payload": {}})
    assert (await again.expect("ERROR"))["payload"]["code"] == "ROOM_FULL"  # max_players=1
    for conn in (anonymous, stranger, member, again):
        await conn.close()
