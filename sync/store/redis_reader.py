"""The Redis store's log reader: the only way a change reaches this process's mirrors.

One task per process runs ``XREAD BLOCK`` over the logs of the rooms loaded
here plus the process's own wake stream (written when that set changes), and
applies each entry in order: a change goes to the room's mirror and then to
the hub; ``T`` (a token resumed elsewhere), ``X`` (closed) and ``C``
(configuration changed) markers go to the store. A version gap marks the room
stale and it is reloaded in one consistent read (FULL_STATE to local members).

After Redis was unreachable the reader recovers before reading again: it
reloads every loaded room (re-seeding it from the mirror when Redis lost it),
reclaims this process's connected players and starts the grace period of those
whose sockets closed meanwhile. It never validates or commits a write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ..core.changes import Author, ChangeKind
from . import redis_keys as keys
from .redis_mirror import MirroredRoom, MirrorRoom, change_of
from .redis_scripts import RawConnection, Reply, pack_command

if TYPE_CHECKING:
    from .redis import RedisRoomStore

logger = logging.getLogger(__name__)

#: XREAD blocks this long; the reader's socket timeout must stay above it
READ_BLOCK_MS = 1000


class LogReader:
    """Reads every loaded room's log and applies it; see the module docstring."""

    def __init__(self, store: RedisRoomStore) -> None:
        self.store = store
        # A connection of its own: it blocks, its timeout is above the block time.
        self.connection = RawConnection(store.redis)
        #: set when Redis failed or lost a room: recover before the next read
        self.recover_needed = False
        self._wake_id: bytes | str = "$"
        self._background: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        store = self.store
        backoff = 0.1
        while not store.stopping:
            try:
                if self.recover_needed:
                    await self._recover()
                streams: dict[Any, Any] = {keys.wake_key(store.proc): self._wake_id}
                for room_id, live in store.rooms.items():
                    streams[keys.log_key(room_id)] = live.stream_id
                command = pack_command((
                    "XREAD", "COUNT", 500, "BLOCK", READ_BLOCK_MS, "STREAMS",
                    *streams.keys(), *streams.values()))
                (reply,) = await self.connection.exchange([command], READ_BLOCK_MS / 1000 + 5)
                if isinstance(reply, Exception):
                    raise reply
                self.on_entries(reply or [])
                for room_id, live in list(store.rooms.items()):
                    if live.stale:
                        await self.reload(room_id, live)
                backoff = 0.1
                store.healthy = True
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if store.healthy:
                    logger.warning("redis unavailable (%s); retrying", exc)
                store.healthy = False
                self.recover_needed = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception:
                logger.exception("redis reader failed; reloading its rooms")
                self.recover_needed = True
                await asyncio.sleep(backoff)

    async def close(self) -> None:
        await self.connection.drop()

    def on_entries(self, reply: list[Any]) -> None:
        """Apply one XREAD reply: ``[[stream, [[id, [field, value, ...]], ...]], ...]``."""
        now = time.monotonic()
        rooms = self.store.rooms
        for stream, entries in reply:
            room_id = keys.room_of_log(stream)
            if room_id is None:  # our wake stream
                self._wake_id = entries[-1][0]
                continue
            live = rooms.get(room_id)
            if live is None:
                continue
            for entry_id, flat in entries:
                live.stream_id = entry_id
                if live.stale:
                    continue
                pairs = iter(flat)  # a raw reply: [field, value, field, value...]
                self._apply(room_id, live, dict(zip(pairs, pairs, strict=True)), now)
                if room_id not in rooms:
                    break
            live.settle()

    def _apply(
        self, room_id: str, live: MirroredRoom, fields: dict[bytes, bytes], now: float
    ) -> None:
        store = self.store
        kind = fields[b"k"]
        if kind == b"T":
            self._taken_over(room_id, fields[b"pid"].decode(), fields[b"c"].decode())
            return
        if kind == b"X":
            store.room_closed(room_id, live)
            return
        if kind == b"Y":  # a document update (§16)
            store.documents.on_entry(room_id, fields)
            return
        if kind in (b"E", b"M", b"R"):  # events, messages for room code, its refusals
            store.room_code.on_entry(room_id, kind, fields)
            return
        if kind == b"C":  # the configuration changed (any process wrote it): re-read it
            task = asyncio.get_running_loop().create_task(store._reload_config(room_id))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        mirror = live.room
        version, base = int(fields[b"v"]), int(fields[b"b"])
        if version <= mirror.version:
            return
        if base != mirror.version:
            logger.info("room %s: log gap at %s (mirror %s); reloading", room_id, base,
                        mirror.version)
            live.stale = True
            return
        change = change_of(fields)
        mirror.apply(change, now=now)
        store.hub.publish(room_id, change)
        if live.snapshot_duty:
            persistence = store.persistence
            persistence.room_changed(room_id)
            if persistence.history:  # §15: the lease holder records the room's changes
                persistence.change_made(room_id, change, Author.from_wire(fields.get(b"a")),
                                        int(time.time() * 1000))
        live.last_used = now
        if change.kind is ChangeKind.LEFT and change.payload is not None:
            player_id = change.payload["playerId"]
            store.local.pop((room_id, player_id), None)
            store.disconnected.discard((room_id, player_id))
        store.room_code.on_change(room_id, change, fields.get(b"s"))

    def _taken_over(self, room_id: str, player_id: str, conn_id: str) -> None:
        """A token resumed this player on another socket: let go of ours."""
        store = self.store
        local = store.local.get((room_id, player_id))
        if local is None or local.conn_id == conn_id:
            return
        del store.local[room_id, player_id]
        store.detach(room_id, local.connection, "resumed")

    async def reload(self, room_id: str, live: MirroredRoom, *, lost: bool = False) -> None:
        """Rebuild the mirror from Redis and send FULL_STATE to local members. The room
        gets a new epoch (§14) when Redis is behind the mirror (it lost changes this
        process applied) or ``lost`` says it may have (its cluster primary failed)."""
        store = self.store
        applied, known = live.room.version, live.epoch
        reply = await store.scripts.room("load", room_id)
        if reply[0] is Reply.CLOSED:
            store.room_closed(room_id, live)
            return
        if reply[0] is Reply.MISSING:
            await store.seed(room_id, live.room)
            reply = await store.scripts.room("load", room_id)
            if reply[0] is not Reply.OK:
                return
        mirror, last_id = MirrorRoom.from_reply(
            room_id, live.room.room_type, store.limits, reply,
            max_players=live.config.max_players, now=time.monotonic(),
        )
        for pid, meta in live.room.meta.items():
            if pid in mirror.meta:
                meta.initial = mirror.meta[pid].initial
                mirror.meta[pid] = meta
        live.room, live.stream_id, live.stale = mirror, last_id, False
        await store.documents.load(room_id)  # entries were skipped while the room was stale
        lost = lost or mirror.version < applied
        # §14: new if it was just re-seeded, or if state may have been lost
        live.epoch = await store.fetch_epoch(room_id, replace=known if lost else None)
        live.recent.clear()
        live.release_all()
        if live.snapshot_duty:
            if known is not None and live.epoch != known:
                # §15: the versions above the new timeline's start get reused
                store.persistence.history_rewound(room_id, mirror.version)
            store.record_backlog(room_id)  # §15: the changes skipped since the gap
        fanout = store.hub.get(room_id)
        if fanout is not None:
            fanout.resync_all()

    async def _recover(self) -> None:
        """After Redis came back: reclaim our players, reload every room, resync members."""
        store = self.store
        await store.redis.ping()
        await store.janitor.heartbeat()
        for room_id, live in list(store.rooms.items()):
            await self.recover_room(room_id, live)
        # Players whose sockets closed while Redis was away start their grace now.
        players_key = keys.proc_players_key(store.proc)
        for raw in await store.redis.smembers(players_key):
            room_id, pid = keys.parse_member(raw)
            if (room_id, pid) not in store.local:
                await store.scripts.room(
                    "disconnect", room_id, pid, store.proc + "|", store.grace_ms,
                    after=[("SADD", keys.GRACES, room_id)])
                await store.redis.srem(players_key, raw)
        self.recover_needed = False
        store.healthy = True
        logger.warning("redis reachable again; %d rooms resynchronised", len(store.rooms))

    async def recover_room(self, room_id: str, live: MirroredRoom, *, lost: bool = False) -> None:
        """One room after its Redis was away: re-seed it if Redis lost it, reclaim this
        process's players in it, reload it (``lost``: a new epoch, see ``reload``)."""
        store = self.store
        reply = await store.scripts.room("load", room_id)
        if reply[0] is Reply.MISSING:
            await store.seed(room_id, live.room)
        for (rid, pid), local in list(store.local.items()):
            if rid != room_id:
                continue
            claimed = await store.claim(room_id, pid, local, force=True)
            if claimed[0] is Reply.ABSENT:
                # Seeded by a process that never saw this player: join it back as it was.
                player = live.room.players.get(pid) or {}
                await store.commit_join(room_id, live, pid, player, local)
        live.stale = True
        await self.reload(room_id, live, lost=lost)
