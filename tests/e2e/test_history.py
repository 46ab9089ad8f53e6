"""Room history (§15) against a real daphne: every change listed with its author, the
state at any version equal to what a client held at that version, restore as one new
change and one delta, private fields for staff only.

On the Redis pass (``KASAGI_TEST_SERVER_REDIS=1``) the same tests run on a
Redis-backed server (the process holding the room's snapshot lease records);
tests/redis/test_history_cluster.py runs two processes.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from sync.core.merge_patch import apply_patch
from tests.api.livehttp import HttpClient, LiveUser, create_users
from tests.wsclient import Conn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

SECRET = "hidden-4c1d"
#: the server's KASAGI_SNAPSHOT_INTERVAL (the default): history lists a change within it + 1 s
INTERVAL = 1.0


@pytest.fixture(scope="module")
def users(live_database_url: str) -> dict[str, LiveUser]:
    tag = os.getpid()
    made = create_users(live_database_url, [
        {"username": f"hann-{tag}", "password": "hann-pw-1"},
        {"username": f"hbob-{tag}", "password": "hbob-pw-1"},
        {"username": f"hstaff-{tag}", "password": "hstaff-pw-1", "staff": True},
    ])
    return {name.split("-")[0][1:]: user for name, user in made.items()}


async def call(server: Any, user: LiveUser | None, method: str, path: str, **kw: Any) -> Any:
    client = HttpClient(server.http_url, token=user.token if user else None)
    return await asyncio.to_thread(client.request, method, path, **kw)


class Tracker(Conn):
    """A member that keeps the state it held after each frame, by version."""

    state: dict[str, Any]
    version: int
    held: dict[int, dict[str, Any]]

    async def join_tracked(self, room_id: str, **payload: Any) -> str:
        full = await self.join(room_id, **payload)
        self.version, self.state = full["version"], full["payload"]["state"]
        self.held = {self.version: self.state}
        return full["payload"]["playerId"]

    async def until(self, version: int) -> None:
        while self.version < version:
            frame = await self.recv()
            kind = frame["type"]
            if kind not in ("DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT"):
                continue
            assert frame["baseVersion"] == self.version, frame
            payload = frame["payload"]
            if kind == "DELTA_UPDATE":
                patch = payload
            elif kind == "PLAYER_JOINED":
                patch = {"players": {payload["playerId"]: payload["state"]}}
            else:
                patch = {"players": {payload["playerId"]: None}}
            self.state = apply_patch(self.state, patch)
            self.version = frame["version"]
            self.held[self.version] = self.state


def send(conn: Conn, room_id: str, payload: dict[str, Any], entity: str | None = None) -> Any:
    message: dict[str, Any] = {"type": "STATE_UPDATE", "roomId": room_id, "payload": payload}
    if entity:
        message["entityId"] = entity
    return conn.send(message)


async def listed(server: Any, user: LiveUser, room_id: str, version: int) -> list[dict]:
    """The whole history once it lists ``version``, following ``next``; the deadline is
    the contract's (snapshot interval + 1 s) with room for a loaded machine."""
    deadline = time.monotonic() + INTERVAL + 1.0 + 10.0
    while True:
        records: list[dict] = []
        path = f"/api/rooms/{room_id}/history/?limit=3"
        while path:
            page = await call(server, user, "GET", path)
            assert page.status == 200, page.text
            body = page.json()
            records += body["results"]
            nxt = body["next"]
            path = nxt[len(server.http_url):] if nxt else ""
        if records and records[-1]["version"] >= version:
            return records
        assert time.monotonic() < deadline, f"history stops at {records[-1:]}, want {version}"
        await asyncio.sleep(0.2)


async def test_history_lists_every_change_with_its_author_and_rebuilds_each_state(
    kasagi_server: Any, users: dict[str, LiveUser], room_id: str,
) -> None:
    ann, bob, staff = users["ann"], users["bob"], users["staff"]
    made = await call(kasagi_server, ann, "POST", "/api/rooms/", json_body={"roomId": room_id})
    assert made.status == 201, made.text
    a = await Tracker.open(kasagi_server.ws_url, additional_headers={
        "Authorization": f"Token {ann.token}"})
    pa = await a.join_tracked(room_id, playerName="A")
    b = await Tracker.open(kasagi_server.ws_url)  # anonymous
    pb = await b.join_tracked(room_id, playerName="B")
    sends = [(a, {"x": 1, "_secret": SECRET}, None), (a, {"text": "hello"}, "doc"),
             (b, {"y": 2}, None), (b, {"text": "world", "by": "B"}, "doc")]
    for version, (member, payload, entity) in enumerate(sends, start=3):
        await send(member, room_id, payload, entity)  # one at a time: one order everywhere
        await a.until(version)
    await b.until(6)

    records = await listed(kasagi_server, bob, room_id, 6)
    assert [r["version"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all(r["baseVersion"] == r["version"] - 1 for r in records)
    assert [r["kind"] for r in records] == ["join", "join", "update", "entity", "update",
                                            "entity"]
    assert {(r["playerId"], r["userId"], r["username"], r["source"]) for r in records[:1]} == {
        (pa, ann.pk, ann.username, "player")}
    assert records[1]["playerId"] == pb and records[1]["userId"] is None
    assert records[3]["userId"] == ann.pk and records[3]["patch"] == {
        "entities": {"doc": {"text": "hello"}}}
    assert all(isinstance(r["timestamp"], int) for r in records)
    # private fields: out of the patches for a member, in them for staff
    assert records[2]["patch"] == {"players": {pa: {"x": 1}}}
    by_staff = await listed(kasagi_server, staff, room_id, 6)
    assert by_staff[2]["patch"] == {"players": {pa: {"x": 1, "_secret": SECRET}}}

    # the state at every version is what b (who sees no private field) held then
    for version, held in b.held.items():
        answer = await call(kasagi_server, bob, "GET",
                            f"/api/rooms/{room_id}/state/?version={version}")
        assert answer.status == 200, (version, answer.text)
        assert answer.json() == {"roomId": room_id, "version": version, "state": held}
    # staff get the whole state: what a (who sees all there is) held
    for version, held in a.held.items():
        answer = await call(kasagi_server, staff, "GET",
                            f"/api/rooms/{room_id}/state/?version={version}")
        assert answer.json()["state"] == held, version
    at3 = await call(kasagi_server, staff, "GET", f"/api/rooms/{room_id}/state/?version=3")
    assert at3.json()["state"]["players"][pa]["_secret"] == SECRET
    outside = await call(kasagi_server, bob, "GET", f"/api/rooms/{room_id}/state/?version=99")
    assert outside.status == 404 and "detail" in outside.json()
    bad = await call(kasagi_server, bob, "GET", f"/api/rooms/{room_id}/history/?limit=1001")
    assert bad.status == 400


async def test_restore_is_one_new_change_and_one_delta_for_the_members(
    kasagi_server: Any, users: dict[str, LiveUser], room_id: str,
) -> None:
    ann, bob = users["ann"], users["bob"]
    made = await call(kasagi_server, ann, "POST", "/api/rooms/", json_body={"roomId": room_id})
    assert made.status == 201, made.text
    a = await Tracker.open(kasagi_server.ws_url)
    pa = await a.join_tracked(room_id, playerName="A")
    await send(a, room_id, {"text": "good"}, entity="doc")
    await send(a, room_id, {"x": 10})
    await a.until(3)
    good = a.held[3]
    await send(a, room_id, {"text": "griefed", "junk": 1}, entity="doc")
    await send(a, room_id, {"x": 99})
    await send(a, room_id, {"n": 1}, entity="spam")
    await a.until(6)
    b = await Tracker.open(kasagi_server.ws_url)  # joined after version 3: never restored away
    pb = await b.join_tracked(room_id, playerName="B")
    await a.until(7)
    await listed(kasagi_server, ann, room_id, 7)

    for user, status in ((None, 401), (bob, 403)):
        refused = await call(kasagi_server, user, "POST", f"/api/rooms/{room_id}/restore/",
                             json_body={"version": 3})
        assert refused.status == status and "detail" in refused.json()
    missing = await call(kasagi_server, ann, "POST", f"/api/rooms/{room_id}/restore/",
                         json_body={"version": 500})
    assert missing.status == 404

    restored = await call(kasagi_server, ann, "POST", f"/api/rooms/{room_id}/restore/",
                          json_body={"version": 3})
    assert restored.status == 200, restored.text
    assert restored.json() == {"version": 8}
    for member in (a, b):
        delta = await member.expect("DELTA_UPDATE")
        assert (delta["baseVersion"], delta["version"]) == (7, 8)
        assert delta["payload"] == {"players": {pa: {"x": 10}},
                                    "entities": {"doc": {"text": "good", "junk": None},
                                                 "spam": None}}
    await a.nothing(0.3)
    live = (await call(kasagi_server, ann, "GET", f"/api/rooms/{room_id}/state/")).json()
    assert live["version"] == 8
    assert live["state"]["entities"] == good["entities"]
    assert live["state"]["players"][pa] == good["players"][pa]
    assert pb in live["state"]["players"]  # nobody added or removed

    records = await listed(kasagi_server, ann, room_id, 8)
    last = records[-1]
    assert (last["kind"], last["source"], last["userId"], last["username"]) == (
        "restore", "api", ann.pk, ann.username)
