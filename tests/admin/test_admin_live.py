"""The admin's live actions against a real daphne and real sockets.

An operator logs in through ``/admin/login/`` (a real session, CSRF and all)
and acts on a room a WebSocket client plays in: the action runs in the
server through ``rooms.services`` → ``sync.api`` → the store, and the client
sees the result as protocol frames.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest

from tests.api.livehttp import HttpClient, LiveUser, admin_room_pk, create_users
from tests.wsclient import Conn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def operator(live_database_url: str) -> LiveUser:
    name = f"operator-{os.getpid()}"
    made = create_users(live_database_url, [
        {"username": name, "password": "operator-pw-1", "staff": True, "superuser": True},
    ])
    return made[name]


async def admin_session(server: Any, operator: LiveUser) -> HttpClient:
    client = HttpClient(server.http_url)
    await asyncio.to_thread(
        client.login, "/admin/login/", operator.username, operator.password, "/admin/"
    )
    return client


async def make_room(server: Any, operator: LiveUser, room_id: str, **fields: Any) -> None:
    api = HttpClient(server.http_url, token=operator.token)
    answer = await asyncio.to_thread(
        api.post, "/api/rooms/", json_body={"roomId": room_id, **fields}
    )
    assert answer.status == 201, answer.text


async def test_admin_kicks_a_live_player(
    kasagi_server: Any, operator: LiveUser, room_id: str
) -> None:
    await make_room(kasagi_server, operator, room_id)
    ann, bob = await Conn.open(kasagi_server.ws_url), await Conn.open(kasagi_server.ws_url)
    ann_id = (await ann.join(room_id, playerName="Ann"))["payload"]["playerId"]
    await bob.join(room_id, playerName="Bob")
    await ann.expect("PLAYER_JOINED")

    admin = await admin_session(kasagi_server, operator)
    pk = await asyncio.to_thread(admin_room_pk, admin, room_id)
    page = await asyncio.to_thread(admin.get, f"/admin/rooms/room/{pk}/change/")
    assert page.status == 200
    assert ann_id in page.text and "Ann" in page.text and "connected" in page.text
    assert f"/rooms/{room_id}/?spectate=1" in page.text
    confirm = await asyncio.to_thread(
        admin.get, f"/admin/rooms/room/{pk}/live/kick/?player={ann_id}"
    )
    assert f'value="{ann_id}" selected' in confirm.text

    done = await asyncio.to_thread(
        admin.post_form, f"/admin/rooms/room/{pk}/live/kick/", {"player_id": ann_id}
    )
    assert done.status == 302
    for conn in (ann, bob):
        left = await conn.expect("PLAYER_LEFT")
        assert left["payload"] == {"playerId": ann_id, "reason": "kicked"}

    await ann.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 1}})
    assert (await ann.expect("ERROR"))["payload"]["code"] == "NOT_IN_ROOM"
    after = await asyncio.to_thread(admin.get, f"/admin/rooms/room/{pk}/change/")
    assert f"Player {ann_id} was kicked." in after.text
    members = re.search(r"<th>playerId</th><th>player</th><th>socket</th>.*?</table>",
                        after.text, re.S)
    assert members and ann_id not in members.group(0)  # (the history still says she joined)
    await ann.close()
    await bob.close()


async def test_admin_resets_a_live_room(
    kasagi_server: Any, operator: LiveUser, room_id: str
) -> None:
    await make_room(kasagi_server, operator, room_id)
    player = await Conn.open(kasagi_server.ws_url)
    me = (await player.join(room_id, playerName="P"))["payload"]["playerId"]
    await player.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "ball",
                       "payload": {"x": 3}})
    await player.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 9}})
    await player.expect("DELTA_UPDATE")

    admin = await admin_session(kasagi_server, operator)
    pk = await asyncio.to_thread(admin_room_pk, admin, room_id)
    done = await asyncio.to_thread(admin.post_form, f"/admin/rooms/room/{pk}/live/reset/", {})
    assert done.status == 302
    state: dict[str, Any] = {}
    while state.get("entities", {}).get("ball", {}) is not None:
        delta = await player.expect("DELTA_UPDATE")
        state = delta["payload"]
    assert state == {"players": {me: {"x": None}}, "entities": {"ball": None}}


async def test_admin_bulk_close_reaches_the_players(
    kasagi_server: Any, operator: LiveUser, room_id: str
) -> None:
    await make_room(kasagi_server, operator, room_id, visibility="login")
    player = await Conn.open(kasagi_server.ws_url,
                             additional_headers={"Authorization": f"Token {operator.token}"})
    me = (await player.join(room_id))["payload"]["playerId"]
    admin = await admin_session(kasagi_server, operator)
    pk = await asyncio.to_thread(admin_room_pk, admin, room_id)
    listing = await asyncio.to_thread(admin.get, f"/admin/rooms/room/?q={room_id}")
    assert listing.status == 200
    form = {"action": "close_rooms", "_selected_action": pk, "confirm": "yes"}
    done = await asyncio.to_thread(admin.post_form, "/admin/rooms/room/", form)
    assert done.status == 302
    assert (await player.expect("PLAYER_LEFT"))["payload"] == {"playerId": me, "reason": "closed"}
    assert (await player.expect("ERROR"))["payload"]["code"] == "ROOM_CLOSED"
    await player.close()


async def test_admin_login_is_the_default_createsuperuser_login(
    kasagi_server: Any, operator: LiveUser
) -> None:
    anonymous = HttpClient(kasagi_server.http_url)
    assert (await asyncio.to_thread(anonymous.get, "/admin/rooms/room/")).status == 302
    admin = await admin_session(kasagi_server, operator)
    for path in ("/admin/", "/admin/rooms/room/", "/admin/rooms/playersession/",
                 "/admin/rooms/room/add/"):
        assert (await asyncio.to_thread(admin.get, path)).status == 200, path


async def join_answer(server: Any, room_id: str, **payload: Any) -> dict:
    conn = await Conn.open(server.ws_url)
    await conn.send({"type": "JOIN_ROOM", "roomId": room_id, "payload": payload})
    frame = await conn.recv()
    await conn.close()
    return frame


async def eventually_refused(server: Any, room_id: str, code: str, **payload: Any) -> None:
    """A fresh client's JOIN_ROOM is refused with ``code`` (within a few seconds: with
    Redis the change reaches the room through its log)."""
    for _ in range(50):
        frame = await join_answer(server, room_id, **payload)
        if frame["type"] == "ERROR" and frame["payload"]["code"] == code:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"JOIN_ROOM was not refused with {code}: {frame}")


async def test_admin_changes_to_a_live_room_apply_at_once(
    kasagi_server: Any, operator: LiveUser, room_id: str
) -> None:
    await make_room(kasagi_server, operator, room_id)
    ann = await Conn.open(kasagi_server.ws_url)
    await ann.join(room_id, playerName="Ann")
    assert (await join_answer(kasagi_server, room_id, spectate=True))["type"] == "FULL_STATE"

    admin = await admin_session(kasagi_server, operator)
    pk = await asyncio.to_thread(admin_room_pk, admin, room_id)

    async def change(**fields: str) -> None:
        form = {"name": room_id, "room_type": "freeform", "visibility": "public",
                "max_players": "", "owner": str(operator.pk), "members": "", "_save": "Save",
                "snapshots-TOTAL_FORMS": "0", "snapshots-INITIAL_FORMS": "0", **fields}
        done = await asyncio.to_thread(admin.post_form, f"/admin/rooms/room/{pk}/change/", form)
        assert done.status == 302, re.findall(r'errorlist.*?</ul>', done.text, re.S)

    await change(visibility="private")
    await eventually_refused(kasagi_server, room_id, "FORBIDDEN", spectate=True)
    await ann.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 1}})
    assert (await ann.expect("DELTA_UPDATE"))["payload"]["players"]  # players in stay

    await change(visibility="public", max_players="1")
    await eventually_refused(kasagi_server, room_id, "ROOM_FULL", playerName="Bob")
    await change(visibility="public", max_players="2")
    for _ in range(50):
        frame = await join_answer(kasagi_server, room_id, playerName="Bob")
        if frame["type"] == "FULL_STATE":
            break
        await asyncio.sleep(0.1)
    assert frame["type"] == "FULL_STATE", frame


async def test_admin_sends_an_announcement_event(
    kasagi_server: Any, operator: LiveUser, room_id: str
) -> None:
    await make_room(kasagi_server, operator, room_id)
    ann = await Conn.open(kasagi_server.ws_url)
    full = await ann.join(room_id, playerName="Ann")
    admin = await admin_session(kasagi_server, operator)
    pk = await asyncio.to_thread(admin_room_pk, admin, room_id)
    page = await asyncio.to_thread(admin.get, f"/admin/rooms/room/{pk}/change/")
    assert f"/admin/rooms/room/{pk}/live/announce/" in page.text
    done = await asyncio.to_thread(
        admin.post_form, f"/admin/rooms/room/{pk}/live/announce/",
        {"text": "Server restarts in 5 minutes"},
    )
    assert done.status == 302
    event = await ann.expect("EVENT", kind="announcement")
    assert event["payload"]["data"] == {
        "text": "Server restarts in 5 minutes", "by": operator.username}
    assert event["payload"]["from"] is None and "version" not in event
    await ann.send({"type": "RESYNC", "roomId": room_id})
    assert (await ann.expect("FULL_STATE"))["version"] == full["version"]  # not state
    await ann.close()
