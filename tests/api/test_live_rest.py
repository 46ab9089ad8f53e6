"""The REST API against a real daphne, with real sockets in the rooms.

Users and tokens are made in the live database with ``manage.py``-style
Django code in a subprocess; rooms are made and closed over HTTP; players are
raw WebSocket clients (tests/wsclient.py).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from tests.api.livehttp import HttpClient, LiveUser, create_users
from tests.wsclient import Conn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def live_users(live_database_url: str) -> dict[str, LiveUser]:
    tag = f"{os.getpid()}"
    made = create_users(live_database_url, [
        {"username": f"ann-{tag}", "password": "ann-pw-1"},
        {"username": f"bob-{tag}", "password": "bob-pw-1"},
        {"username": f"staff-{tag}", "password": "staff-pw-1", "staff": True},
    ])
    return {name.split("-")[0]: user for name, user in made.items()}


def http(server: Any, user: LiveUser | None = None) -> HttpClient:
    return HttpClient(server.http_url, token=user.token if user else None)


async def call(client: HttpClient, method: str, path: str, **kw: Any) -> Any:
    return await asyncio.to_thread(client.request, method, path, **kw)


async def create_room(server: Any, owner: LiveUser, room_id: str, **fields: Any) -> dict:
    answer = await call(http(server, owner), "POST", "/api/rooms/",
                        json_body={"roomId": room_id, **fields})
    assert answer.status == 201, answer.text
    return answer.json()


async def with_token(server: Any, user: LiveUser, *, in_query: bool = False) -> Conn:
    if in_query:
        return await Conn.open(f"{server.ws_url}?token={user.token}")
    headers = {"Authorization": f"Token {user.token}"}
    return await Conn.open(server.ws_url, additional_headers=headers)


async def test_delete_closes_the_live_room(
    kasagi_server: Any, live_users: dict[str, LiveUser], room_id: str
) -> None:
    await create_room(kasagi_server, live_users["ann"], room_id)
    player = await Conn.open(kasagi_server.ws_url)
    me = (await player.join(room_id, playerName="P"))["payload"]["playerId"]

    refused = await call(http(kasagi_server, live_users["bob"]), "DELETE", f"/api/rooms/{room_id}/")
    assert refused.status == 403 and "detail" in refused.json()
    await player.nothing(0.3)

    closed = await call(http(kasagi_server, live_users["staff"]), "DELETE",
                        f"/api/rooms/{room_id}/")
    assert closed.status == 204
    left = await player.expect("PLAYER_LEFT")
    assert left["payload"] == {"playerId": me, "reason": "closed"}
    assert left["version"] == left["baseVersion"] + 1
    pushed = await player.expect("ERROR")
    assert pushed["payload"]["code"] == "ROOM_CLOSED"

    await player.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 1},
                       "requestId": "after"})
    answer = await player.expect("ERROR")
    assert answer["payload"]["code"] == "ROOM_CLOSED" and answer["requestId"] == "after"
    await player.send({"type": "JOIN_ROOM", "roomId": room_id, "payload": {}})
    assert (await player.expect("ERROR"))["payload"]["code"] == "ROOM_CLOSED"
    gone = await call(http(kasagi_server, live_users["staff"]), "GET", f"/api/rooms/{room_id}/")
    assert gone.status == 404
    await player.close()


async def test_state_and_room_show_the_live_version(
    kasagi_server: Any, live_users: dict[str, LiveUser], room_id: str
) -> None:
    await create_room(kasagi_server, live_users["ann"], room_id)
    player = await Conn.open(kasagi_server.ws_url)
    me = (await player.join(room_id, playerName="P"))["payload"]["playerId"]
    await player.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 7}})
    delta = await player.expect("DELTA_UPDATE")

    anonymous = http(kasagi_server)
    state = (await call(anonymous, "GET", f"/api/rooms/{room_id}/state/")).json()
    assert state["roomId"] == room_id
    assert state["version"] == delta["version"]
    assert state["state"]["players"][me] == {"playerName": "P", "x": 7}
    room = (await call(anonymous, "GET", f"/api/rooms/{room_id}/")).json()
    assert (room["version"], room["playerCount"]) == (delta["version"], 1)
    await player.close()


async def test_token_on_the_handshake_names_the_player(
    kasagi_server: Any, live_users: dict[str, LiveUser], room_id: str
) -> None:
    ann, bob = live_users["ann"], live_users["bob"]
    # the token a site's client would fetch
    fetched = await call(http(kasagi_server), "POST", "/api/auth/token/",
                         json_body={"username": ann.username, "password": ann.password})
    assert fetched.json() == {"token": ann.token}

    by_header = await with_token(kasagi_server, ann)
    full = await by_header.join(room_id, playerName="A", userId=999, username="forged")
    me = full["payload"]["playerId"]
    assert full["payload"]["state"]["players"][me] == {
        "playerName": "A", "userId": ann.pk, "username": ann.username,
    }
    by_query = await with_token(kasagi_server, bob, in_query=True)
    full = await by_query.join(room_id)
    bobs = full["payload"]["state"]["players"][full["payload"]["playerId"]]
    assert (bobs["userId"], bobs["username"]) == (bob.pk, bob.username)

    # clients cannot write the server-owned fields
    await by_header.send({"type": "STATE_UPDATE", "roomId": room_id,
                          "payload": {"username": "x"}, "requestId": 1})
    refused = await by_header.expect("ERROR")
    assert refused["payload"]["code"] == "INVALID_UPDATE"

    # a bad token is an anonymous socket, not a failure
    stranger = await Conn.open(f"{kasagi_server.ws_url}?token=not-a-token")
    full = await stranger.join(room_id, playerName="S")
    assert "userId" not in full["payload"]["state"]["players"][full["payload"]["playerId"]]
    for conn in (by_header, by_query, stranger):
        await conn.close()


async def test_private_room_is_forbidden_to_others(
    kasagi_server: Any, live_users: dict[str, LiveUser], room_id: str
) -> None:
    ann, bob, staff = live_users["ann"], live_users["bob"], live_users["staff"]
    await create_room(kasagi_server, ann, room_id, visibility="private")

    for conn in (await with_token(kasagi_server, bob), await Conn.open(kasagi_server.ws_url)):
        await conn.send({"type": "JOIN_ROOM", "roomId": room_id, "payload": {},
                         "requestId": "j"})
        refused = await conn.expect("ERROR")
        assert refused["payload"]["code"] == "FORBIDDEN" and refused["requestId"] == "j"
        await conn.send({"type": "PING", "requestId": "still-open"})
        assert (await conn.expect("PONG"))["requestId"] == "still-open"
        await conn.close()

    owner = await with_token(kasagi_server, ann)
    await owner.join(room_id)
    admin = await with_token(kasagi_server, staff)
    await admin.join(room_id)
    await owner.close()
    await admin.close()

    assert (await call(http(kasagi_server, bob), "GET", f"/api/rooms/{room_id}/")).status == 404
    assert (await call(http(kasagi_server, bob), "GET",
                       f"/api/rooms/{room_id}/state/")).status == 404
    listed = (await call(http(kasagi_server, ann), "GET", "/api/rooms/?pageSize=200")).json()
    assert room_id in {room["roomId"] for room in listed["results"]}


async def test_health_and_metrics_on_the_live_server(kasagi_server: Any) -> None:
    client = http(kasagi_server)
    health = await call(client, "GET", "/healthz")
    assert health.status == 200
    redis = "ok" if kasagi_server.env.get("REDIS_URL") else "not configured"
    assert health.json() == {"status": "ok", "database": "ok", "redis": redis}
    metrics = await call(client, "GET", "/metrics")
    assert metrics.status == 200
    assert "kasagi_connections" in metrics.text
