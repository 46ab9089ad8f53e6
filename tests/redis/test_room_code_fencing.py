"""A runner whose lease moved on (it was paused past its TTL) can never write (§12).

Two stores of this process stand for two server processes on one real Redis;
the lease is taken from the first by deleting it, as its TTL running out would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sync.core.room_code import RoomContext, handles
from sync.core.room_types import RoomType, register
from sync.directory import Identity, MemoryDirectory, RoomConfig
from sync.store import redis_keys as keys
from sync.store.redis_scripts import LOG_MAXLEN
from tests.redis.local_cluster import async_client
from tests.redis.test_key_layout import new_store, until

pytestmark = [pytest.mark.redis, pytest.mark.asyncio, pytest.mark.timeout(60)]


@register
class FencedCounter(RoomType):
    name = "test-fenced-counter"
    label = "Counter (fencing test)"

    @handles("bump")
    def bump(self, room: RoomContext, player_id: str | None, data: Any) -> None:
        count = (room.entities.get("count") or {}).get("n", 0)
        room.update_entity("count", {"n": count + 1})


async def test_a_stale_runner_is_fenced_off(redis_url: str, room_id: str) -> None:
    directory = MemoryDirectory()
    directory.configs[room_id] = RoomConfig(room_id, room_type="test-fenced-counter")
    first, second = new_store(redis_url, directory, 5), new_store(redis_url, directory, 5)
    client = async_client(redis_url)  # a cluster client on the cluster pass
    try:
        await first.activate(room_id, who=Identity(), create=False)
        stale_runner, stale_host = first.room_code.runners[room_id]
        stale_runner.message(None, "bump", None)  # a write while it holds the lease: lands
        await until(lambda: "count" in first.rooms[room_id].room.entities, "the first write")

        await client.delete(keys.runner_key(room_id))  # its TTL ran out while it was paused
        await second.activate(room_id, who=Identity(), create=False)
        assert room_id in second.room_code.runners
        assert second.room_code.runners[room_id][1].token != stale_host.token

        stale_runner.message(None, "bump", None)  # the paused runner wakes up and writes
        await until(lambda: room_id not in first.room_code.runners, "the stale runner stops")
        await asyncio.sleep(0.2)
        state = await second.snapshot(room_id)
        assert state is not None and state[1]["entities"]["count"] == {"n": 1}
        # its events and code-state saves are refused the same way
        refused = await first.scripts.plain(
            "fenced", [keys.runner_key(room_id), keys.log_key(room_id), keys.code_key(room_id)],
            [stale_host.token, "e", b"{}", LOG_MAXLEN])
        assert refused == 0
        # while the current runner's writes land
        second.room_code.runners[room_id][0].message(None, "bump", None)
        await until(lambda: (second.rooms[room_id].room.entities.get("count") or {}).get("n")
                    == 2, "the new runner's write")
    finally:
        await client.aclose()
        await first.stop()
        await second.stop()
