"""Private player fields (§13) against a real daphne, checked on the raw frames of
each codec (``conn_type``: JSON text, MessagePack, bin1 and the names its tables announce).

A field whose name starts with ``_`` reaches its owner only: never another
player, a spectator, REST ``/state/`` (staff included); the admin's room page
shows it to staff. The others' chains stay gapless across the changes they
cannot see. On the Redis pass (``KASAGI_TEST_SERVER_REDIS=1``) the same tests
run on a Redis-backed server, plus one with the players on two processes.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest

from sync.core.merge_patch import apply_patch
from tests.api.livehttp import HttpClient, LiveUser, admin_room_pk, create_users
from tests.wsclient import Conn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

ON_REDIS = os.environ.get("KASAGI_TEST_SERVER_REDIS") == "1"
SECRET = "s3cr3t-7f2a"
#: a JSON object key that starts with "_"
PRIVATE_KEY = re.compile(r'"_[^"]*"\s*:')
CARD = "ace-of-spades-91c"


def private_names(value: Any) -> list[str]:
    """The keys starting with ``_`` anywhere in a decoded frame."""
    if isinstance(value, dict):
        return [k for k, v in value.items() for k in ([k] if k.startswith("_") else [])
                + private_names(v)]
    if isinstance(value, list):
        return [k for item in value for k in private_names(item)]
    return []


def saw(conn: Conn, text: str) -> bool:
    """Whether ``text`` is in any frame's bytes as received (every codec carries
    strings as UTF-8, so a secret cannot hide in an encoding)."""
    needle = text.encode()
    return any(needle in (raw.encode() if isinstance(raw, str) else raw) for raw in conn.raw)


def never_saw(conn: Conn, *secrets: str) -> None:
    """None of ``secrets`` reached ``conn``, nor even a private field's name: in no
    frame, no JSON text, no name a bin1 table announced."""
    for secret in secrets:
        assert not saw(conn, secret), (secret, conn.seen)
    for frame in conn.seen:
        assert not private_names(frame), frame
    for raw in conn.raw:  # a key (not a value: a session token may start with "_")
        assert not isinstance(raw, str) or not PRIVATE_KEY.search(raw), raw
    assert not [n for n in getattr(conn, "names", ()) if n.startswith("_")], conn


def chain(frames: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """A client's state and version after ``frames``; asserts the §6 chain."""
    version, state = -1, None
    for frame in frames:
        kind = frame["type"]
        if kind == "FULL_STATE":
            version, state = frame["version"], frame["payload"]["state"]
            continue
        if kind not in ("DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT"):
            continue
        assert frame["baseVersion"] == version, f"gap at {version}: {frame}"
        payload = frame["payload"]
        if kind == "DELTA_UPDATE":
            state = apply_patch(state, payload)
        else:
            assert frame["version"] == frame["baseVersion"] + 1, frame
            value = payload["state"] if kind == "PLAYER_JOINED" else None
            state = apply_patch(state, {"players": {payload["playerId"]: value}})
        version = frame["version"]
    assert state is not None
    return version, state


@pytest.fixture(scope="module")
def staff(live_database_url: str) -> LiveUser:
    name = f"private-staff-{os.getpid()}"
    made = create_users(live_database_url, [
        {"username": name, "password": "private-pw-1", "staff": True, "superuser": True}])
    return made[name]


def create_room(server: Any, owner: LiveUser, room_id: str) -> None:
    answer = HttpClient(server.http_url, token=owner.token).post("/api/rooms/", json_body={
        "roomId": room_id, "name": room_id, "roomType": "freeform", "visibility": "public"})
    assert answer.status == 201, answer.text


def update(room_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": "STATE_UPDATE", "roomId": room_id, "payload": payload}


async def test_a_secret_reaches_its_owner_only_and_the_others_chains_stay_gapless(
    kasagi_server: Any, staff: LiveUser, room_id: str, conn_type: type[Conn],
) -> None:
    create_room(kasagi_server, staff, room_id)
    a, b = await conn_type.open(kasagi_server.ws_url), await conn_type.open(kasagi_server.ws_url)
    watcher = await conn_type.open(kasagi_server.ws_url)
    pa = (await a.join(room_id, playerName="A"))["payload"]["playerId"]
    await b.join(room_id, playerName="B")
    await a.expect("PLAYER_JOINED")
    await watcher.join(room_id, spectate=True)

    # a change of private fields only: the owner's confirmation has it, nobody else gets a frame
    await a.send(update(room_id, {"_secret": SECRET}))
    confirmation = await a.expect("DELTA_UPDATE")
    assert confirmation["payload"] == {"players": {pa: {"_secret": SECRET}}}
    await b.nothing()
    await watcher.nothing()

    # the next visible change carries the folded version: no gap, no secret
    await a.send(update(room_id, {"x": 5, "_secret": SECRET + "-2"}))
    assert (await a.expect("DELTA_UPDATE"))["payload"] == {
        "players": {pa: {"x": 5, "_secret": SECRET + "-2"}}}
    for member in (b, watcher):
        delta = await member.expect("DELTA_UPDATE")
        assert delta["payload"] == {"players": {pa: {"x": 5}}}
        assert delta["version"] == confirmation["version"] + 1
        assert delta["version"] - delta["baseVersion"] == 2  # the private change folded in

    # a joiner's private field from JOIN_ROOM is in its own FULL_STATE only
    await a.send(update(room_id, {"_secret": None}))  # another invisible change first
    await a.expect("DELTA_UPDATE")
    c = await conn_type.open(kasagi_server.ws_url)
    full_c = await c.join(room_id, playerName="C", _card=CARD)
    pc = full_c["payload"]["playerId"]
    assert full_c["payload"]["state"]["players"][pc] == {"playerName": "C", "_card": CARD}
    assert full_c["payload"]["state"]["players"][pa] == {"playerName": "A", "x": 5}
    for member in (a, b, watcher):
        joined = await member.expect("PLAYER_JOINED")
        assert joined["payload"] == {"playerId": pc, "state": {"playerName": "C"}}
        assert joined["version"] == joined["baseVersion"] + 1
    # before the PLAYER_JOINED, b and the spectator got a {} DELTA covering the folded version
    folded = [f for f in b.seen if f["type"] == "DELTA_UPDATE"][-1]
    assert folded["payload"] == {} and folded["version"] == joined["baseVersion"]

    # each member's frames rebuilt its view: RESYNC's FULL_STATE (its view) agrees
    for member, viewer in ((a, pa), (b, None), (c, pc), (watcher, None)):
        version, state = chain(member.seen)
        await member.send({"type": "RESYNC", "roomId": room_id})
        fresh = await member.expect("FULL_STATE")
        assert (version, state) == (fresh["version"], fresh["payload"]["state"])
        assert version == full_c["version"]
        assert ("_card" in state["players"][pc]) is (viewer == pc)
        assert ("_secret" in str(state)) is False

    never_saw(b, SECRET, CARD)
    never_saw(watcher, SECRET, CARD)
    assert not saw(c, SECRET) and not saw(a, CARD)

    # REST /state/ never shows private fields, not even to staff
    for client in (HttpClient(kasagi_server.http_url),
                   HttpClient(kasagi_server.http_url, token=staff.token)):
        answer = await asyncio.to_thread(client.get, f"/api/rooms/{room_id}/state/")
        assert answer.status == 200, answer.text
        assert CARD not in answer.text and not PRIVATE_KEY.search(answer.text)
        assert answer.json()["state"]["players"][pc] == {"playerName": "C"}

    # the admin's room page (staff only) shows them
    admin = HttpClient(kasagi_server.http_url)
    await asyncio.to_thread(admin.login, "/admin/login/", staff.username, "private-pw-1",
                            "/admin/")
    pk = await asyncio.to_thread(admin_room_pk, admin, room_id)
    page = await asyncio.to_thread(admin.get, f"/admin/rooms/room/{pk}/change/")
    assert page.status == 200 and CARD in page.text
    for conn in (a, b, c, watcher):
        await conn.close()


async def test_an_entity_and_the_private_fields_of_the_sender_reach_everyone_right(
    kasagi_server: Any, room_id: str, conn_type: type[Conn],
) -> None:
    """Entities are never private; a mixed change is split per member, in one tick."""
    a, b = await conn_type.open(kasagi_server.ws_url), await conn_type.open(kasagi_server.ws_url)
    pa = (await a.join(room_id, playerName="A", _hand=[1, 2]))["payload"]["playerId"]
    await b.join(room_id, playerName="B")
    await a.expect("PLAYER_JOINED")
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "table",
                  "payload": {"_pile": 3}})
    for member in (a, b):
        assert (await member.expect("DELTA_UPDATE"))["payload"] == {
            "entities": {"table": {"_pile": 3}}}
    await a.send(update(room_id, {"_hand": [1], "score": 1}))
    assert (await a.expect("DELTA_UPDATE"))["payload"] == {
        "players": {pa: {"_hand": [1], "score": 1}}}
    assert (await b.expect("DELTA_UPDATE"))["payload"] == {"players": {pa: {"score": 1}}}
    assert not saw(b, "_hand")
    chain(b.seen)
    for conn in (a, b):
        await conn.close()


@pytest.mark.skipif(not ON_REDIS, reason="the Redis pass: two processes share the room")
async def test_on_two_redis_processes_the_other_process_hides_the_secret_too(
    start_server: Any, room_id: str,
) -> None:
    one, two = start_server(), start_server()
    a = await Conn.open(one.ws_url)
    b = await Conn.open(two.ws_url)
    pa = (await a.join(room_id, playerName="A"))["payload"]["playerId"]
    await b.join(room_id, playerName="B")
    await a.expect("PLAYER_JOINED")
    await a.send(update(room_id, {"_secret": SECRET}))
    assert (await a.expect("DELTA_UPDATE"))["payload"] == {"players": {pa: {"_secret": SECRET}}}
    await a.send(update(room_id, {"x": 1}))
    assert (await a.expect("DELTA_UPDATE"))["payload"] == {"players": {pa: {"x": 1}}}
    delta = await b.expect("DELTA_UPDATE")
    assert delta["payload"] == {"players": {pa: {"x": 1}}}
    assert delta["version"] - delta["baseVersion"] == 2
    watcher = await Conn.open(two.ws_url)
    full = await watcher.join(room_id, spectate=True)
    assert full["payload"]["state"]["players"][pa] == {"playerName": "A", "x": 1}
    answer = await asyncio.to_thread(HttpClient(two.http_url).get, f"/api/rooms/{room_id}/state/")
    assert answer.status == 200 and SECRET not in answer.text
    chain(b.seen)
    never_saw(b, SECRET)
    never_saw(watcher, SECRET)
    for conn in (a, b, watcher):
        await conn.close()


async def test_a_resume_by_version_gets_its_view_of_the_missed_changes(
    kasagi_server: Any, room_id: str, conn_type: type[Conn],
) -> None:
    """§14 through the same frames as a tick: the missed private changes of another
    player are folded, never sent, and the chain goes on without a gap."""
    url = kasagi_server.ws_url
    a, b = await conn_type.open(url), await conn_type.open(url)
    full = await a.join(room_id, playerName="A")
    await b.join(room_id, playerName="B", _mine="b-0")
    pb = (await a.expect("PLAYER_JOINED"))["payload"]["playerId"]
    since = a.seen[-1]["version"]
    a.ws.transport.abort()  # a lost network, no LEAVE_ROOM
    await asyncio.sleep(0.1)
    await b.send(update(room_id, {"_mine": SECRET}))
    await b.expect("DELTA_UPDATE")
    await b.send(update(room_id, {"x": 1}))
    await b.expect("DELTA_UPDATE")
    await b.send(update(room_id, {"_mine": SECRET + "-3"}))
    current = (await b.expect("DELTA_UPDATE"))["version"]
    await b.send(update(room_id, {"_mine": SECRET + "-4"}))  # hidden, after the last frame
    await b.expect("DELTA_UPDATE")

    back = await conn_type.open(url)
    await back.send({"type": "JOIN_ROOM", "roomId": room_id, "payload": {
        "sessionToken": full["payload"]["sessionToken"], "sinceVersion": since,
        "epoch": full["payload"]["epoch"]}})
    answer = await back.recv()
    assert answer["type"] == "RESUMED" and answer["version"] == since, answer
    # one frame: the hidden versions around the visible one are folded into it
    delta = await back.expect("DELTA_UPDATE")
    assert (delta["baseVersion"], delta["version"]) == (since, current + 1)
    assert delta["payload"] == {"players": {pb: {"x": 1}}}
    await back.nothing()
    await b.send(update(room_id, {"_mine": SECRET + "-5"}))  # hidden: nothing for A
    await b.expect("DELTA_UPDATE")
    await back.nothing()
    await b.send(update(room_id, {"x": 2}))
    nxt = await back.expect("DELTA_UPDATE")
    assert (nxt["baseVersion"], nxt["version"]) == (current + 1, current + 3)
    assert nxt["payload"] == {"players": {pb: {"x": 2}}}
    never_saw(back, SECRET, "b-0")
    for conn in (b, back):
        await conn.close()
