"""The ``world`` room type (§13, interest management) against a real daphne.

Players far apart do not see each other; one walking into range (within the
speed rule: the players join close to a cell boundary) arrives whole in the
other's next DELTA_UPDATE, walking out is removed with ``null``; PLAYER_JOINED
and PLAYER_LEFT go only to those whose view holds the player; a spectator sees
the whole room; private fields stay private. Every member's chain rebuilds its
view (RESYNC's FULL_STATE agrees). The views run on each codec (``conn_type``).
On the Redis pass (``KASAGI_TEST_SERVER_REDIS=1``) the same tests run on a
Redis-backed server, plus one with the players on two processes.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.api.livehttp import HttpClient, LiveUser, create_users
from tests.e2e.test_private_fields import chain, never_saw, update
from tests.wsclient import Conn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

ON_REDIS = os.environ.get("KASAGI_TEST_SERVER_REDIS") == "1"
SECRET = "#5ec2e7"


@pytest.fixture(scope="module")
def owner(live_database_url: str) -> LiveUser:
    name = f"world-owner-{os.getpid()}"
    made = create_users(live_database_url, [{"username": name, "password": "world-pw-1"}])
    return made[name]


def create_world(server: Any, owner: LiveUser, room_id: str) -> None:
    answer = HttpClient(server.http_url, token=owner.token).post("/api/rooms/", json_body={
        "roomId": room_id, "name": room_id, "roomType": "world", "visibility": "public"})
    assert answer.status == 201, answer.text


async def same_as_resync(member: Conn, room_id: str) -> dict[str, Any]:
    """The member's chain rebuilt exactly its view: RESYNC's FULL_STATE agrees (at a
    later version only when the changes since are invisible to it, folded)."""
    version, state = chain(member.seen)
    await member.send({"type": "RESYNC", "roomId": room_id})
    fresh = await member.expect("FULL_STATE")
    assert state == fresh["payload"]["state"]
    assert version <= fresh["version"]
    return state


async def test_far_players_do_not_see_each_other_until_one_walks_into_range(
    kasagi_server: Any, owner: LiveUser, room_id: str, conn_type: type[Conn],
) -> None:
    create_world(kasagi_server, owner, room_id)
    url = kasagi_server.ws_url
    a, b, c = [await conn_type.open(url) for _ in range(3)]
    full_a = await a.join(room_id, playerName="A", x=500, y=500, _secret=SECRET)
    pa = full_a["payload"]["playerId"]
    assert full_a["payload"]["state"]["players"] == {
        pa: {"playerName": "A", "x": 500, "y": 500, "_secret": SECRET}}
    # b stands 1,550 units east of a: another cell, two columns away (out of range)
    full_b = await b.join(room_id, playerName="B", x=2050, y=600)
    pb = full_b["payload"]["playerId"]
    assert sorted(full_b["payload"]["state"]["players"]) == [pb]
    await a.nothing()  # no PLAYER_JOINED for a player out of a's view

    # c stands between them: both see c join, c sees both
    full_c = await c.join(room_id, playerName="C", x=1500, y=500)
    pc = full_c["payload"]["playerId"]
    assert sorted(full_c["payload"]["state"]["players"]) == sorted([pa, pb, pc])
    assert "_secret" not in full_c["payload"]["state"]["players"][pa]
    for member in (a, b):
        joined = await member.expect("PLAYER_JOINED")
        assert joined["payload"]["playerId"] == pc
        assert joined["version"] == joined["baseVersion"] + 1
    # before a's PLAYER_JOINED, a DELTA covering b's (invisible) join
    folded = [f for f in a.seen if f["type"] == "DELTA_UPDATE"]
    assert folded and folded[-1]["payload"] == {}

    # b walks 100 units west (within the speed rule) across the boundary: in range now
    await b.send(update(room_id, {"x": 1950}))
    arrived = await a.expect("DELTA_UPDATE")
    assert arrived["payload"] == {"players": {pb: {"playerName": "B", "x": 1950, "y": 600}}}
    seen_by_b = await b.expect("DELTA_UPDATE")
    assert seen_by_b["payload"] == {"players": {
        pb: {"x": 1950}, pa: {"playerName": "A", "x": 500, "y": 500}}}
    assert (await c.expect("DELTA_UPDATE"))["payload"] == {"players": {pb: {"x": 1950}}}

    # a moves: b sees it, and never a's secret
    await a.send(update(room_id, {"y": 550, "_secret": SECRET + "0"}))
    assert (await a.expect("DELTA_UPDATE"))["payload"] == {
        "players": {pa: {"y": 550, "_secret": SECRET + "0"}}}
    for member in (b, c):
        assert (await member.expect("DELTA_UPDATE"))["payload"] == {"players": {pa: {"y": 550}}}

    # b walks back out: removed with null on both sides
    await b.send(update(room_id, {"x": 2050}))
    assert (await a.expect("DELTA_UPDATE"))["payload"] == {"players": {pb: None}}
    assert (await b.expect("DELTA_UPDATE"))["payload"] == {"players": {pb: {"x": 2050}, pa: None}}
    assert (await c.expect("DELTA_UPDATE"))["payload"] == {"players": {pb: {"x": 2050}}}

    # a spectator sees the whole room, without private fields
    watcher = await conn_type.open(url)
    whole = await watcher.join(room_id, spectate=True)
    assert sorted(whole["payload"]["state"]["players"]) == sorted([pa, pb, pc])

    # b leaves: PLAYER_LEFT to c and the spectator (who held b), not to a
    await b.send({"type": "LEAVE_ROOM", "roomId": room_id})
    for member in (c, watcher):
        left = await member.expect("PLAYER_LEFT")
        assert left["payload"]["playerId"] == pb
    await a.nothing()

    state_a = await same_as_resync(a, room_id)
    assert sorted(state_a["players"]) == sorted([pa, pc])
    assert state_a["players"][pa]["_secret"] == SECRET + "0"
    state_c = await same_as_resync(c, room_id)
    assert sorted(state_c["players"]) == sorted([pa, pc])
    await same_as_resync(watcher, room_id)
    for member in (b, c, watcher):
        never_saw(member, SECRET)
    assert not any(f["type"] == "PLAYER_LEFT" for f in a.seen)
    for conn in (a, b, c, watcher):
        await conn.close()


async def test_entities_with_a_position_follow_the_range_and_others_reach_everyone(
    kasagi_server: Any, owner: LiveUser, room_id: str, conn_type: type[Conn],
) -> None:
    create_world(kasagi_server, owner, room_id)
    a, b = await conn_type.open(kasagi_server.ws_url), await conn_type.open(kasagi_server.ws_url)
    await a.join(room_id, playerName="A", x=100, y=100)
    await b.join(room_id, playerName="B", x=9900, y=9900)
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "flag",
                  "payload": {"x": 150, "y": 150, "kind": "flag"}})
    assert (await a.expect("DELTA_UPDATE"))["payload"] == {
        "entities": {"flag": {"x": 150, "y": 150, "kind": "flag"}}}
    await b.nothing()
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "notice",
                  "payload": {"text": "hello, world"}})
    for member in (a, b):
        assert (await member.expect("DELTA_UPDATE"))["payload"] == {
            "entities": {"notice": {"text": "hello, world"}}}
    # the flag is carried to b's corner: it leaves a's view and arrives whole in b's
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "flag",
                  "payload": {"x": 9800, "y": 9800}})
    assert (await a.expect("DELTA_UPDATE"))["payload"] == {"entities": {"flag": None}}
    assert (await b.expect("DELTA_UPDATE"))["payload"] == {
        "entities": {"flag": {"x": 9800, "y": 9800, "kind": "flag"}}}
    assert sorted((await same_as_resync(a, room_id))["entities"]) == ["notice"]
    assert sorted((await same_as_resync(b, room_id))["entities"]) == ["flag", "notice"]
    for conn in (a, b):
        await conn.close()


async def test_a_join_without_a_position_gets_a_spawn_point_in_the_plane(
    kasagi_server: Any, owner: LiveUser, room_id: str,
) -> None:
    create_world(kasagi_server, owner, room_id)
    a = await Conn.open(kasagi_server.ws_url)
    full = await a.join(room_id, playerName="A")
    me = full["payload"]["state"]["players"][full["payload"]["playerId"]]
    assert 2000 <= me["x"] <= 8000 and 2000 <= me["y"] <= 8000
    await a.send(update(room_id, {"x": me["x"] + 5000}))  # far faster than the speed rule
    error = await a.expect("ERROR")
    assert error["payload"]["code"] == "INVALID_UPDATE"
    await a.send(update(room_id, {"x": 10_000 + 1, "y": me["y"]}))
    await a.expect("ERROR")
    await a.close()


@pytest.mark.skipif(not ON_REDIS, reason="the Redis pass: two processes share the room")
async def test_on_two_redis_processes_views_follow_the_moves(
    start_server: Any, owner: LiveUser, room_id: str,
) -> None:
    one, two = start_server(), start_server()
    create_world(one, owner, room_id)
    a, b = await Conn.open(one.ws_url), await Conn.open(two.ws_url)
    pa = (await a.join(room_id, playerName="A", x=500, y=500, _secret=SECRET))[
        "payload"]["playerId"]
    full_b = await b.join(room_id, playerName="B", x=2050, y=500)
    pb = full_b["payload"]["playerId"]
    assert sorted(full_b["payload"]["state"]["players"]) == [pb]
    await a.nothing()
    await b.send(update(room_id, {"x": 1950}))
    assert (await a.expect("DELTA_UPDATE"))["payload"] == {
        "players": {pb: {"playerName": "B", "x": 1950, "y": 500}}}
    assert (await b.expect("DELTA_UPDATE"))["payload"] == {
        "players": {pb: {"x": 1950}, pa: {"playerName": "A", "x": 500, "y": 500}}}
    await b.send(update(room_id, {"x": 2050}))
    assert (await a.expect("DELTA_UPDATE"))["payload"] == {"players": {pb: None}}
    assert (await b.expect("DELTA_UPDATE"))["payload"] == {"players": {pb: {"x": 2050}, pa: None}}
    await same_as_resync(a, room_id)
    await same_as_resync(b, room_id)
    never_saw(b, SECRET)
    for conn in (a, b):
        await conn.close()


async def test_the_python_sdk_mirrors_its_view_unchanged(
    kasagi_server: Any, owner: LiveUser, room_id: str,
) -> None:
    """The SDK knows nothing of views: its mirror simply is the member's view."""
    from kasagi_client import Delta, connect

    from tests.e2e.test_python_client import next_of

    create_world(kasagi_server, owner, room_id)
    a = await connect(kasagi_server.ws_url)
    b = await connect(kasagi_server.ws_url)
    try:
        await a.join(room_id, playerName="A", x=500, y=500, _secret=SECRET)
        await b.join(room_id, playerName="B", x=2050, y=600)
        assert b.player_id not in a.state["players"]
        await b.update(x=1950, wait=True)
        await next_of(a, Delta, lambda _: b.player_id in a.state["players"])
        assert a.state["players"][b.player_id] == {"playerName": "B", "x": 1950, "y": 600}
        assert b.state["players"][a.player_id] == {"playerName": "A", "x": 500, "y": 500}
        await b.update(x=2050, wait=True)
        await next_of(a, Delta, lambda _: b.player_id not in a.state["players"])
        await next_of(b, Delta, lambda _: a.player_id not in b.state["players"])
        assert a.me == {"playerName": "A", "x": 500, "y": 500, "_secret": SECRET}
    finally:
        await a.close()
        await b.close()
