"""Room configurations, snapshots and session tokens from the database.

The engine asks a :class:`DatabaseDirectory` once per room activation (and
once per resume of a token it does not hold in memory), never per message.
Every query runs on a small executor of its own, so the event loop never
waits on the database and Django's shared sync thread (HTTP views) never
waits on the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import DatabaseError, close_old_connections, connections

from sync.directory import Identity, RoomConfig, RoomSnapshot, StoredSession

from .documents import stored_documents
from .models import PlayerSession, Room
from .models import RoomSnapshot as RoomSnapshotRow

logger = logging.getLogger(__name__)

T = TypeVar("T")


def room_config(room: Room) -> RoomConfig:
    """The engine's view of a room row (members read here, once)."""
    return RoomConfig(
        room.room_id,
        name=room.name,
        room_type=room.room_type,
        visibility=room.visibility,
        max_players=room.max_players,
        owner_id=room.owner_id,
        member_ids=frozenset(room.members.values_list("pk", flat=True)),
        closed=room.closed_at is not None,
    )


class DatabaseDirectory:
    """:class:`sync.directory.RoomDirectory` on the ``rooms`` models."""

    def __init__(self, *, workers: int = 2) -> None:
        self._workers = workers
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="kasagi-directory")

    async def _run(self, query: Callable[[], T]) -> T:
        def call() -> T:
            close_old_connections()
            try:
                return query()
            finally:
                close_old_connections()

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def get(self, room_id: str) -> RoomConfig | None:
        def query() -> RoomConfig | None:
            room = Room.objects.filter(room_id=room_id).first()
            return room_config(room) if room is not None else None

        return await self._run(query)

    async def create(self, room_id: str, *, owner: Identity) -> RoomConfig:
        """The row of a room made by its first JOIN_ROOM (its owner: that user, if any)."""

        def query() -> RoomConfig:
            room, _ = Room.objects.get_or_create(
                room_id=room_id, defaults={"name": room_id, "owner_id": owner.user_id}
            )
            return room_config(room)

        return await self._run(query)

    async def latest_snapshot(self, room_id: str) -> RoomSnapshot | None:
        def query() -> RoomSnapshot | None:
            row = (
                RoomSnapshotRow.objects.filter(room__room_id=room_id)
                .order_by("-version")
                .values("version", "state")
                .first()
            )
            return RoomSnapshot(row["version"], row["state"]) if row else None

        return await self._run(query)

    async def documents(self, room_id: str) -> dict[str, bytes]:
        """(§16) the room's stored documents: docId → encoded state."""
        return await self._run(lambda: stored_documents(room_id))

    async def find_session(self, token_hash: str) -> StoredSession | None:
        """The live session of a token (not ended); a database fault is "unknown token"."""

        def query() -> StoredSession | None:
            row = (
                PlayerSession.objects.filter(token_hash=token_hash, ended_at__isnull=True)
                .values("room__room_id", "player_id")
                .first()
            )
            return StoredSession(row["room__room_id"], row["player_id"]) if row else None

        try:
            return await self._run(query)
        except DatabaseError:
            # §6: a token that cannot be checked never fails the join; it joins as new.
            logger.warning("session lookup failed; joining as a new player", exc_info=True)
            return None

    def close(self, timeout: float = 2.0) -> None:
        """Close each worker thread's database connection, then the pool.

        A worker keeps its connection up to CONN_MAX_AGE; left open it would hold
        the database after the engine is gone (a test database could not be
        dropped). One task per worker, held at a barrier so every thread runs one.
        """
        workers = self._workers
        barrier = threading.Barrier(workers)

        def close_connection() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout)
            connections.close_all()

        for _ in range(workers):
            self._executor.submit(close_connection)
        self._executor.shutdown(wait=True)
