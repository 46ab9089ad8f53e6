"""The wire contract (PROTOCOL.md §2–§6) against a real daphne, message by message,
with the clients on each codec (``conn_type``)."""

from __future__ import annotations

import asyncio

import pytest

from tests.wsclient import Conn

pytestmark = pytest.mark.asyncio


async def open_two(server, room_id, conn_type: type[Conn] = Conn):
    a = await conn_type.open(server.ws_url)
    b = await conn_type.open(server.ws_url)
    full_a = await a.join(room_id, playerName="A")
    full_b = await b.join(room_id, playerName="B")
    await a.expect("PLAYER_JOINED")
    return a, b, full_a, full_b


async def test_join_answers_full_state_to_the_joiner_and_player_joined_to_others(
    kasagi_server, room_id, conn_type
):
    a = await conn_type.open(kasagi_server.ws_url)
    await a.send({"type": "JOIN_ROOM", "roomId": room_id, "requestId": "j-1",
                  "payload": {"playerName": "A", "color": "#FF0000"}})
    full = await a.recv()
    assert full["type"] == "FULL_STATE"
    assert full["roomId"] == room_id and full["requestId"] == "j-1"
    assert isinstance(full["timestamp"], int) and full["version"] == 1
    me = full["payload"]["playerId"]
    assert full["payload"]["resumed"] is False
    assert isinstance(full["payload"]["sessionToken"], str)
    assert full["payload"]["state"] == {
        "players": {me: {"playerName": "A", "color": "#FF0000"}}, "entities": {}}

    b = await conn_type.open(kasagi_server.ws_url)
    full_b = await b.join(room_id, playerName="B")
    joined = await a.expect("PLAYER_JOINED")
    assert joined["baseVersion"] == 1 and joined["version"] == 2
    assert joined["payload"] == {"playerId": full_b["payload"]["playerId"],
                                 "state": {"playerName": "B"}}
    assert full_b["payload"]["sessionToken"] not in str(joined)
    await b.nothing()  # no PLAYER_JOINED about itself


async def test_update_reaches_every_member_sender_included(kasagi_server, room_id, conn_type):
    a, b, full_a, _ = await open_two(kasagi_server, room_id, conn_type)
    me = full_a["payload"]["playerId"]
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 150, "y": 2},
                  "version": 2})
    for conn in (a, b):
        delta = await conn.expect("DELTA_UPDATE")
        assert (delta["baseVersion"], delta["version"]) == (2, 3)
        assert delta["payload"] == {"players": {me: {"x": 150, "y": 2}}}
    # The same values again change nothing: no version, no DELTA_UPDATE.
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 150}})
    await a.nothing()
    await b.nothing()


async def test_entities_are_created_patched_and_deleted_when_emptied(
    kasagi_server, room_id, conn_type
):
    a, b, _, _ = await open_two(kasagi_server, room_id, conn_type)
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "doc-1",
                  "payload": {"text": "hello", "meta": {"lang": "en"}}})
    for conn in (a, b):
        delta = await conn.expect("DELTA_UPDATE")
        assert delta["payload"] == {
            "entities": {"doc-1": {"text": "hello", "meta": {"lang": "en"}}}}
    await b.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "doc-1",
                  "payload": {"meta": {"lang": None}}})
    assert (await a.expect("DELTA_UPDATE"))["payload"] == {
        "entities": {"doc-1": {"meta": {"lang": None}}}}
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "entityId": "doc-1",
                  "payload": {"text": None, "meta": None}})
    await b.expect("DELTA_UPDATE")  # its own meta change
    assert (await b.expect("DELTA_UPDATE"))["payload"] == {"entities": {"doc-1": None}}
    await b.send({"type": "RESYNC", "roomId": room_id})
    assert (await b.expect("FULL_STATE"))["payload"]["state"]["entities"] == {}


async def test_leave_tells_the_others_and_ends_the_leavers_stream(
    kasagi_server, room_id, conn_type
):
    a, b, full_a, _ = await open_two(kasagi_server, room_id, conn_type)
    await a.send({"type": "LEAVE_ROOM", "roomId": room_id})
    left = await b.expect("PLAYER_LEFT")
    assert left["payload"] == {"playerId": full_a["payload"]["playerId"], "reason": "left"}
    assert left["version"] == left["baseVersion"] + 1
    await b.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 1}})
    await b.expect("DELTA_UPDATE")
    await a.nothing()
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "requestId": 5, "payload": {}})
    error = await a.expect("ERROR")
    assert error["payload"]["code"] == "NOT_IN_ROOM" and error["requestId"] == 5
    # The connection may join again (a new player).
    again = await a.join(room_id)
    assert again["payload"]["playerId"] != full_a["payload"]["playerId"]


async def test_resync_and_ping(kasagi_server, room_id, conn_type):
    a = await conn_type.open(kasagi_server.ws_url)
    full = await a.join(room_id, playerName="A")
    await a.send({"type": "RESYNC", "roomId": room_id, "requestId": "r-1"})
    again = await a.expect("FULL_STATE")
    assert again["requestId"] == "r-1" and again["payload"]["resumed"] is False
    for key in ("playerId", "sessionToken", "state"):
        assert again["payload"][key] == full["payload"][key]
    await a.send({"type": "PING", "requestId": 99})
    pong = await a.expect("PONG")
    assert pong["requestId"] == 99 and isinstance(pong["payload"]["serverTime"], int)
    await a.send({"type": "PING", "roomId": room_id, "requestId": "p"})
    assert (await a.expect("PONG"))["roomId"] == room_id


async def test_spectator_sees_changes_but_is_not_a_player(kasagi_server, room_id, conn_type):
    a = await conn_type.open(kasagi_server.ws_url)
    await a.join(room_id, playerName="A")
    watcher = await conn_type.open(kasagi_server.ws_url)
    full = await watcher.join(room_id, spectate=True)
    assert full["payload"]["playerId"] is None and full["payload"]["sessionToken"] is None
    assert list(full["payload"]["state"]["players"]) != [None]
    await a.nothing()  # no PLAYER_JOINED about a spectator
    await a.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"x": 3}})
    assert (await watcher.expect("DELTA_UPDATE"))["version"] == 2
    await watcher.send({"type": "STATE_UPDATE", "roomId": room_id, "requestId": 1,
                        "payload": {"x": 1}})
    assert (await watcher.expect("ERROR"))["payload"]["code"] == "FORBIDDEN"
    await a.expect("DELTA_UPDATE")
    await watcher.close()
    await a.nothing()  # nor a PLAYER_LEFT


async def test_many_writers_every_chain_gapless_and_converged(kasagi_server, room_id, conn_type):
    """8 clients × 50 rapid updates to their players and one shared entity (§6).

    Every chain is gapless, nothing is lost, and every client ends holding
    exactly what a fresh joiner's FULL_STATE says.
    """
    clients = [await conn_type.open(kasagi_server.ws_url) for _ in range(8)]
    for conn in clients:
        await conn.join(room_id)
    updates = 50

    async def write(index: int, conn: Conn) -> None:
        for n in range(updates):
            if n % 5 == 4:
                message = {"type": "STATE_UPDATE", "roomId": room_id, "entityId": "board",
                           "payload": {f"c{index}": n + 1, "last": index}}
            else:
                message = {"type": "STATE_UPDATE", "roomId": room_id,
                           "payload": {"n": n + 1, "tag": f"c{index}"}}
            await conn.send(message)
        await conn.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"done": True}})

    await asyncio.gather(*(write(i, c) for i, c in enumerate(clients)))
    final_version = 8 + 8 * (updates + 1)
    states = []
    for conn in clients:
        while True:  # until this client has seen the final version
            frame = await conn.recv(10)
            if frame.get("version") == final_version:
                break
        states.append(replay(conn.seen))
    fresh = await conn_type.open(kasagi_server.ws_url)
    truth = await fresh.join(room_id, spectate=True)
    assert truth["version"] == final_version
    for version, state in states:
        assert version == final_version
        assert state == truth["payload"]["state"]
    players = truth["payload"]["state"]["players"].values()
    assert sorted(p["n"] for p in players) == [updates - 1] * 8  # the last player write
    board = truth["payload"]["state"]["entities"]["board"]
    assert all(board[f"c{i}"] == updates for i in range(8))


async def test_a_join_racing_updates_gets_a_gapless_stream(kasagi_server, room_id, conn_type):
    writer = await conn_type.open(kasagi_server.ws_url)
    await writer.join(room_id)
    stop = asyncio.Event()

    async def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await writer.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"n": n}})
            await asyncio.sleep(0.02)  # under the 60/s rate limit

    task = asyncio.create_task(write())
    joiners = []
    for _ in range(5):
        conn = await conn_type.open(kasagi_server.ws_url)
        await conn.join(room_id)
        joiners.append(conn)
        await asyncio.sleep(0.03)
    await asyncio.sleep(0.2)
    stop.set()
    await task
    await writer.send({"type": "STATE_UPDATE", "roomId": room_id, "payload": {"n": "end"}})
    for conn in joiners:
        while True:
            frame = await conn.recv(10)
            if frame["type"] == "DELTA_UPDATE" and "end" in str(frame["payload"]):
                break
        replay(conn.seen)  # asserts the chain


def replay(frames):
    """Apply FULL_STATE then every change, asserting the §6 chain; (version, state)."""
    from sync.core.merge_patch import apply_patch

    version, state = None, None
    for frame in frames:
        kind = frame["type"]
        if kind == "FULL_STATE":
            version, state = frame["version"], frame["payload"]["state"]
        elif kind in ("DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT"):
            assert frame["baseVersion"] == version, f"gap/duplicate at {version}: {frame}"
            payload = frame["payload"]
            if kind == "DELTA_UPDATE":
                patch = payload
            elif kind == "PLAYER_JOINED":
                patch = {"players": {payload["playerId"]: payload["state"]}}
            else:
                patch = {"players": {payload["playerId"]: None}}
            state = apply_patch(state, patch)
            state.setdefault("players", {})
            state.setdefault("entities", {})
            version = frame["version"]
    return version, state
