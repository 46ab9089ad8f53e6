"""§15 history on two daphne processes sharing one Redis: the process holding the room's
snapshot lease records the changes it reads from the room's log, each exactly once,
and when the lease moves (its holder killed with its unwritten batch) the new holder
fills the gap from the log."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from sync.store import redis_keys as keys
from tests.api.livehttp import HttpClient
from tests.e2e.test_history import Tracker, send
from tests.live import LiveServer
from tests.redis.local_cluster import client

pytestmark = [pytest.mark.redis, pytest.mark.asyncio, pytest.mark.timeout(120)]


async def history(server: LiveServer, room_id: str, version: int) -> list[dict[str, Any]]:
    """Every record of the room once the history reaches ``version`` (the lease may
    have to expire first: its time-to-live is 3 s)."""
    client = HttpClient(server.http_url)
    deadline = time.monotonic() + 30
    while True:
        records: list[dict[str, Any]] = []
        path = f"/api/rooms/{room_id}/history/?limit=1000"
        while path:
            page = await asyncio.to_thread(client.get, path)
            assert page.status == 200, page.text
            records += page.json()["results"]
            nxt = page.json()["next"]
            path = nxt[len(server.http_url):] if nxt else ""
        if records and records[-1]["version"] >= version and len(records) >= version:
            return records
        assert time.monotonic() < deadline, f"history at {len(records)} records, want {version}"
        await asyncio.sleep(0.25)


def lease_pid(redis_url: str, room_id: str) -> int | None:
    with client(redis_url) as redis_client:  # a cluster client on the cluster pass
        holder = redis_client.get(keys.lease_key(room_id))
    return int(holder.decode().rsplit("-", 2)[1]) if holder else None


async def wait_for_lease(redis_url: str, room_id: str) -> int:
    deadline = time.monotonic() + 10
    while (pid := lease_pid(redis_url, room_id)) is None:
        assert time.monotonic() < deadline, "nobody took the snapshot lease"
        await asyncio.sleep(0.1)
    return pid


async def play(a: Tracker, b: Tracker, room_id: str, rounds: int) -> None:
    """Changes from both processes at once: players on each, entities shared."""
    for i in range(rounds):
        await send(a, room_id, {"x": i})
        await send(b, room_id, {"y": i})
        await send(a if i % 2 else b, room_id, {"n": i}, entity="board")


def check_contiguous(records: list[dict[str, Any]], last: int) -> None:
    versions = [r["version"] for r in records if r["version"] <= last]
    assert versions == list(range(1, last + 1)), versions  # no duplicate, no gap
    assert all(r["baseVersion"] == r["version"] - 1 for r in records)


async def test_both_processes_changes_are_recorded_once_with_no_gap(
    cluster, redis_url, room_id,
) -> None:
    first, second = cluster(2, REDIS_URL=redis_url)
    a, b = await Tracker.open(first.ws_url), await Tracker.open(second.ws_url)
    await a.join_tracked(room_id, name="A")
    await b.join_tracked(room_id, name="B")
    await play(a, b, room_id, 20)
    last = 2 + 20 * 3
    await a.until(last)
    await b.until(last)

    records = await history(first, room_id, last)
    check_contiguous(records, last)
    assert {r["source"] for r in records} == {"player"}
    for version, held in list(a.held.items())[::5]:
        answer = await asyncio.to_thread(
            HttpClient(second.http_url).get, f"/api/rooms/{room_id}/state/?version={version}")
        assert answer.status == 200 and answer.json()["state"] == held, version


async def test_no_gap_when_the_lease_holder_dies_with_changes_it_had_not_written(
    cluster, redis_url, room_id,
) -> None:
    # a longer interval: the holder still holds changes it read when it is killed (and
    # no grace period runs out meanwhile)
    first, second = cluster(2, REDIS_URL=redis_url, KASAGI_SNAPSHOT_INTERVAL="3",
                            KASAGI_GRACE_PERIOD="120")
    a, b = await Tracker.open(first.ws_url), await Tracker.open(second.ws_url)
    await a.join_tracked(room_id, name="A")
    await b.join_tracked(room_id, name="B")
    holder_pid = await wait_for_lease(redis_url, room_id)
    holder, survivor = (first, second) if holder_pid == first.pid else (second, first)
    assert holder_pid == holder.pid
    mine, theirs = (a, b) if holder is first else (b, a)
    for i in range(10):
        await send(theirs, room_id, {"before": i})
    await theirs.until(12)
    holder.stop(signal.SIGKILL)  # its last batch of history dies with it
    for i in range(10):
        await send(theirs, room_id, {"after": i}, entity="board")
    await theirs.until(22)
    await mine.close()

    records = await history(survivor, room_id, 22)
    check_contiguous(records, 22)
    assert lease_pid(redis_url, room_id) == survivor.pid
    # the state at each version is still what the surviving member held
    for version, held in theirs.held.items():
        if version < 12:
            continue
        answer = await asyncio.to_thread(
            HttpClient(survivor.http_url).get, f"/api/rooms/{room_id}/state/?version={version}")
        assert answer.status == 200, (version, answer.text)
        assert answer.json()["state"] == held, version
