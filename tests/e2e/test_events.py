"""MESSAGE and EVENT (§11) and room code (§12) against a real daphne, with the clients
on each codec (``conn_type``)."""

from __future__ import annotations

import asyncio
import math
import os
from typing import Any

import pytest

from sync.core.merge_patch import apply_patch
from tests.api.livehttp import HttpClient, LiveUser, create_users
from tests.wsclient import Conn, MsgpackConn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def owner(live_database_url: str) -> LiveUser:
    made = create_users(live_database_url, [
        {"username": f"events-{os.getpid()}", "password": "events-pw-1"}])
    return next(iter(made.values()))


def create_room(server: Any, owner: LiveUser, room_id: str, room_type: str) -> None:
    answer = HttpClient(server.http_url, token=owner.token).post("/api/rooms/", json_body={
        "roomId": room_id, "name": room_id, "roomType": room_type, "visibility": "public"})
    assert answer.status == 201, answer.text


async def two_in(
    server: Any, room_id: str, conn_type: type[Conn] = Conn, **b_fields: Any
) -> tuple[Conn, Conn, str, str]:
    a, b = await conn_type.open(server.ws_url), await conn_type.open(server.ws_url)
    full_a = await a.join(room_id, playerName="A")
    full_b = await b.join(room_id, playerName="B", **b_fields)
    await a.expect("PLAYER_JOINED")
    return a, b, full_a["payload"]["playerId"], full_b["payload"]["playerId"]


def message(room_id: str, kind: str, data: Any = None, **extra: Any) -> dict[str, Any]:
    payload = {"kind": kind} if data is None else {"kind": kind, "data": data}
    return {"type": "MESSAGE", "roomId": room_id, "payload": payload, **extra}


async def test_an_unhandled_message_is_relayed_to_every_other_member(
    kasagi_server, room_id, conn_type
):
    a, b, pa, _ = await two_in(kasagi_server, room_id, conn_type)
    watcher = await conn_type.open(kasagi_server.ws_url)
    await watcher.join(room_id, spectate=True)
    await a.send(message(room_id, "emoji", {"char": "🎉"}, requestId="m-1"))
    for member in (b, watcher):
        event = await member.expect("EVENT")
        assert event["payload"] == {"kind": "emoji", "data": {"char": "🎉"}, "from": pa}
        assert event["roomId"] == room_id and isinstance(event["timestamp"], int)
        assert "version" not in event and "baseVersion" not in event
    await a.send(message(room_id, "nudge"))
    assert (await b.expect("EVENT"))["payload"] == {"kind": "nudge", "data": None, "from": pa}
    await a.nothing()  # the sender gets nothing on success


async def test_an_event_comes_after_the_update_sent_before_it(kasagi_server, room_id, conn_type):
    a, b, pa, _ = await two_in(kasagi_server, room_id, conn_type)
    for n in range(20):
        await a.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"n": n}})
        await a.send(message(room_id, "said", {"n": n}))
    held = None
    for _ in range(20):
        while True:
            frame = await b.recv()
            if frame["type"] == "DELTA_UPDATE":
                held = frame["payload"]["players"][pa]["n"]
            if frame["type"] == "EVENT":
                break
        n = frame["payload"]["data"]["n"]
        assert held is not None and held >= n, (held, n)  # the update arrived first
        held_n = n
    assert held_n == 19  # and the events kept their order


async def test_message_refusals(kasagi_server, room_id, conn_type):
    a, b, _, _ = await two_in(kasagi_server, room_id, conn_type)
    await a.send(message(room_id, "bad kind!", requestId="m-2"))
    error = await a.expect("ERROR")
    assert error["payload"]["code"] == "BAD_MESSAGE" and error["requestId"] == "m-2"
    await a.send({"type": "MESSAGE", "roomId": room_id, "payload": {"data": 1}})
    assert (await a.expect("ERROR"))["payload"]["code"] == "BAD_MESSAGE"
    await a.send(message("elsewhere", "emoji", requestId=7))
    error = await a.expect("ERROR")
    assert error["payload"]["code"] == "NOT_IN_ROOM" and error["requestId"] == 7
    deep: Any = 1
    for _ in range(10):
        deep = {"d": deep}
    await a.send(message(room_id, "deep", deep))
    assert (await a.expect("ERROR"))["payload"]["code"] == "PAYLOAD_TOO_LARGE"
    watcher = await conn_type.open(kasagi_server.ws_url)
    await watcher.join(room_id, spectate=True)
    await watcher.send(message(room_id, "emoji", requestId="s-1"))
    error = await watcher.expect("ERROR")
    assert error["payload"]["code"] == "FORBIDDEN" and error["requestId"] == "s-1"
    await b.nothing()  # none of them reached anybody
    await a.send({"type": "PING", "requestId": "alive"})
    assert (await a.expect("PONG"))["requestId"] == "alive"


async def test_events_in_messagepack(kasagi_server, room_id):
    a = await Conn.open(kasagi_server.ws_url)
    b = await MsgpackConn.open(kasagi_server.ws_url)
    pa = (await a.join(room_id))["payload"]["playerId"]
    await b.join(room_id)
    await a.expect("PLAYER_JOINED")
    await a.send(message(room_id, "emoji", {"char": "x"}))
    event = await b.expect("EVENT")
    assert event["payload"] == {"kind": "emoji", "data": {"char": "x"}, "from": pa}
    assert b.binary[-1] is True


async def test_room_code_handles_refuses_and_targets(kasagi_server, owner, room_id, conn_type):
    """The example game (games/room_types.py): handlers, refusals, events to one."""
    create_room(kasagi_server, owner, room_id, "potato")
    a, b, pa, pb = await two_in(kasagi_server, room_id, conn_type)
    game = (await a.expect("DELTA_UPDATE"))["payload"]["entities"]["game"]
    assert game["holder"] == pb and game["round"] == 1  # the second joiner starts a round
    yours = await b.expect("EVENT")
    assert yours["payload"]["kind"] == "potato.yours" and yours["payload"]["from"] is None

    await a.send(message(room_id, "pass", {"to": pb}, requestId="p-1"))
    error = await a.expect("ERROR")
    assert error["payload"]["code"] == "INVALID_UPDATE" and error["requestId"] == "p-1"
    await a.send(message(room_id, "dance", requestId="p-2"))
    error = await a.expect("ERROR")
    assert error["payload"]["code"] == "UNKNOWN_MESSAGE" and error["requestId"] == "p-2"
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"lives": 99}})
    assert (await a.expect("ERROR"))["payload"]["code"] == "INVALID_UPDATE"

    await b.send(message(room_id, "pass", {"to": pa}))
    passed = await a.expect("EVENT", kind="potato.passed")
    assert passed["payload"]["data"] == {"from": pb, "to": pa}
    await a.expect("EVENT", kind="potato.yours")  # to the new holder alone...
    frames = [await b.recv() for _ in range(3)]
    kinds = [f["payload"].get("kind") for f in frames if f["type"] == "EVENT"]
    assert "potato.passed" in kinds and "potato.yours" not in kinds
    c = await conn_type.open(kasagi_server.ws_url)
    full = await c.join(room_id, playerName="C")
    state = full["payload"]["state"]
    assert state["entities"]["game"]["holder"] == pa
    assert "rounds" not in str(state) and "server" not in state  # server-only data stays
    d = await conn_type.open(kasagi_server.ws_url)
    await d.send({"type": "JOIN_ROOM", "roomId": room_id, "requestId": "j-d",
                  "payload": {"playerName": "A"}})
    refused = await d.expect("ERROR")  # check_join: the name is taken
    assert refused["payload"]["code"] == "FORBIDDEN" and refused["requestId"] == "j-d"
    await d.join(room_id, playerName="D")  # the connection lives on


async def test_arena_coins_are_placed_and_taken(kasagi_server, room_id, conn_type):
    HttpClient(kasagi_server.http_url).get(f"/rooms/{room_id}/")  # the demo makes it an arena
    a = await conn_type.open(kasagi_server.ws_url)
    b = await conn_type.open(kasagi_server.ws_url)
    full = await a.join(room_id, playerName="A")
    me = full["payload"]["playerId"]
    player = full["payload"]["state"]["players"][me]
    assert 0 <= player["x"] <= 1000 and 0 <= player["y"] <= 1000 and player["score"] == 0
    state = full["payload"]["state"]
    version = full["version"]

    async def follow(timeout: float = 5.0) -> dict[str, Any]:
        nonlocal version
        frame = await a.recv(timeout)
        if frame["type"] in ("DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT"):
            assert frame["baseVersion"] == version
            version = frame["version"]
            if frame["type"] == "DELTA_UPDATE":
                state.update(apply_patch(state, frame["payload"]))
        return frame

    while not any(k.startswith("coin-") for k in state["entities"]):
        await follow(4.0)  # within 3 s of the first join
    coin_id, coin = next((k, v) for k, v in state["entities"].items() if k.startswith("coin-"))
    assert coin["kind"] == "coin" and 0 <= coin["x"] <= 1000
    # B stands in a corner: coins are placed 5 %–95 % across, so it never takes one as
    # it joins (a random spawn could land on a coin, and B took A's)
    await b.join(room_id, playerName="B", x=0, y=0)
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": coin_id,
                  "payload": {"x": 5}})
    error = await a.expect("ERROR")
    assert error["payload"]["code"] in ("INVALID_UPDATE", "FORBIDDEN")

    x, y = player["x"], player["y"]
    while math.hypot(coin["x"] - x, coin["y"] - y) > 30:
        step = 120
        x += max(-step, min(step, coin["x"] - x))
        y += max(-step, min(step, coin["y"] - y))
        await asyncio.sleep(0.13)
        await a.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": x, "y": y}})
    # the walk may cross another coin first (the room places them at random): each
    # one A takes counts, and the one walked to is among them
    score = 0
    while True:
        taken = await b.expect("EVENT", kind="coin.taken")
        score += 1
        assert taken["payload"]["from"] is None
        assert taken["payload"]["data"]["playerId"] == me
        assert taken["payload"]["data"]["score"] == score
        if taken["payload"]["data"]["coinId"] == coin_id:
            break
    await a.send({"type": "RESYNC", "roomId": room_id})
    after = (await a.expect("FULL_STATE"))["payload"]["state"]
    assert coin_id not in after["entities"] and after["players"][me]["score"] == score
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"score": 5}})
    assert (await a.expect("ERROR"))["payload"]["code"] == "INVALID_UPDATE"
