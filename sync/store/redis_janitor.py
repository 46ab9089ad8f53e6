"""The Redis store's janitor: what must happen on a clock, in every process.

Every ``JANITOR_SECONDS`` it refreshes this process's heartbeat and ends the
grace periods that ran out (``leave.lua`` in ``expire`` mode re-checks the
deadline, so PLAYER_LEFT ``timeout`` happens exactly once however many
janitors race); every second it takes or renews the snapshot lease of the
rooms loaded here; every two seconds it reaps processes whose heartbeat
expired (their connected players start their grace period) and unloads rooms
idle for ``room_idle_unload`` seconds. Each step is idempotent and touches one
room (or one process) per command, so the janitor works the same on a cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from ..core.changes import LeaveReason
from . import redis_keys as keys
from .redis_scripts import Reply, text

if TYPE_CHECKING:
    from .redis import RedisRoomStore

logger = logging.getLogger(__name__)

JANITOR_SECONDS = 0.5
HEARTBEAT_MS = 5000


class Janitor:
    """Heartbeat, grace expiry, snapshot leases, reaping, unloading; see the module."""

    def __init__(self, store: RedisRoomStore) -> None:
        self.store = store

    async def run(self) -> None:
        rounds = 0
        while not self.store.stopping:
            rounds += 1
            try:
                await self.heartbeat()
                await self.store.room_code.renew()  # room code: before anything slow
                await self.expire_graces()
                if rounds % 2 == 0:
                    await self.renew_leases()
                if rounds % 4 == 0:
                    await self.reap_dead()
                    await self.unload_idle()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.debug("janitor: redis unavailable (%s)", exc)
            except Exception:
                logger.exception("janitor failed")
            await asyncio.sleep(JANITOR_SECONDS)

    async def heartbeat(self) -> None:
        store = self.store
        async with store.redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.heartbeat_key(store.proc), 1, px=HEARTBEAT_MS)
            pipe.sadd(keys.PROCS, store.proc)
            _, added = await pipe.execute()
        if added and store.local:
            # We were taken for dead (a stall longer than the heartbeat TTL, or Redis
            # lost its data): reclaim our connected players before their grace runs out.
            logger.warning("process %s was reaped while alive; reclaiming players", store.proc)
            store.reader.recover_needed = True
            store.wake()

    async def expire_graces(self) -> None:
        """Time out the players whose grace ran out, in every room with graces
        (``GRACES``), and note who is disconnected (``connected_players``)."""
        store = self.store
        room_ids = [raw.decode() for raw in await store.redis.smembers(keys.GRACES)]
        disconnected: set[tuple[str, str]] = set()
        if room_ids:
            async with store.redis.pipeline(transaction=False) as pipe:
                for room_id in room_ids:
                    pipe.zrange(keys.grace_key(room_id), 0, -1, withscores=True)
                graces = await pipe.execute()
            now_ms = time.time() * 1000
            for room_id, entries in zip(room_ids, graces, strict=True):
                if not entries:
                    await self._unlist(room_id)
                    continue
                for raw, deadline in entries:
                    pid = raw.decode()
                    disconnected.add((room_id, pid))
                    if deadline <= now_ms:
                        await self._expire(room_id, pid)
        store.disconnected = disconnected

    async def _expire(self, room_id: str, player_id: str) -> None:
        reply = await self.store.scripts.room(
            "leave", room_id, player_id, LeaveReason.TIMEOUT.value, "expire")
        if reply[0] is Reply.OK and reply[2]:
            self.store.persistence.session_ended(text(reply[2]), LeaveReason.TIMEOUT.value)

    async def _unlist(self, room_id: str) -> None:
        """Drop a room with no grace left from ``GRACES``, then look again: a grace
        added meanwhile (whose ``SADD`` came before our ``SREM``) puts it back."""
        redis = self.store.redis
        await redis.srem(keys.GRACES, room_id)
        if await redis.zcard(keys.grace_key(room_id)):
            await redis.sadd(keys.GRACES, room_id)

    async def renew_leases(self) -> None:
        store = self.store
        room_ids = list(store.rooms)
        px = int(max(store.snapshot_interval * 3, 3) * 1000)
        owned = await asyncio.gather(
            *(store.scripts.lease(room_id, store.proc, px) for room_id in room_ids))
        for room_id, mine in zip(room_ids, owned, strict=True):
            live = store.rooms.get(room_id)
            if live is None:
                continue
            if mine and not live.snapshot_duty:
                live.snapshot_duty = True
                store.persistence.room_changed(room_id)  # changes made before we took over
                store.record_backlog(room_id)  # and their history (§15)
            live.snapshot_duty = mine

    async def reap_dead(self) -> None:
        """Processes whose heartbeat expired: their players lose their owner and start
        their grace period. Janitors may race on one dead process: each step is
        idempotent (``orphan.lua`` checks the owner)."""
        store = self.store
        redis = store.redis
        for raw in await redis.smembers(keys.PROCS):
            proc = raw.decode()
            if proc == store.proc or await redis.exists(keys.heartbeat_key(proc)):
                continue
            players_key = keys.proc_players_key(proc)
            count = 0
            for member in await redis.smembers(players_key):
                room_id, pid = keys.parse_member(member)
                count += await store.scripts.room(
                    "orphan", room_id, pid, proc, store.grace_ms,
                    after=[("SADD", keys.GRACES, room_id)])
            await redis.delete(players_key)
            await redis.srem(keys.PROCS, proc)
            logger.warning("process %s is gone: %d players start their grace", proc, count)

    async def unload_idle(self) -> None:
        store = self.store
        now = time.monotonic()
        busy = {room_id for room_id, _ in store.local}
        unloaded = []
        for room_id, live in list(store.rooms.items()):
            if (
                room_id not in busy and store.hub.get(room_id) is None
                and not live.waiters and now - live.last_used > store.room_idle_unload
            ):
                del store.rooms[room_id]
                unloaded.append(room_id)
                store.wake()
        for room_id in unloaded:  # its code goes on where the room is still loaded
            if room_id not in store.rooms:
                await store.room_code.release(room_id)
