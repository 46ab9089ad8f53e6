"""A process's copy of one room, fed only from the room's Redis log.

``MirrorRoom`` is the pure ``Room`` plus the version at which each object last
changed (``object_versions``, the token of the per-object compare-and-set) and ``apply``,
which replays a committed change. Writes never touch the mirror: they are
validated on a one-object scratch room (``scratch``), committed by Lua, and
come back through the log in version order like everybody else's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..core.changes import Change, ChangeKind
from ..core.limits import Limits
from ..core.merge_patch import apply_patch
from ..core.room import Room, json_size
from ..core.room_types import PlayerMeta, RoomType
from ..directory import RoomConfig

KINDS = {b"D": ChangeKind.DELTA, b"J": ChangeKind.JOINED, b"L": ChangeKind.LEFT}
TABLES = {"players": "p:", "entities": "e:"}
#: a scratch room never refuses a join on count: Redis owns the count
UNLIMITED = 1 << 30


class MirrorRoom(Room):
    """The room's state as this process last read it from the log."""

    def __init__(
        self, room_id: str, room_type: RoomType, limits: Limits, *, version: int,
        objects: dict[str, Any], object_versions: dict[str, int],
        initial: dict[str, dict[str, Any]], max_players: int | None, now: float,
    ) -> None:
        players = {f[2:]: o for f, o in objects.items() if f.startswith("p:")}
        entities = {f[2:]: o for f, o in objects.items() if f.startswith("e:")}
        super().__init__(
            room_id, room_type, limits, state={"players": players, "entities": entities},
            version=version, max_players=max_players, now=now,
        )
        self.object_versions = dict(object_versions)
        for pid, init in initial.items():
            if pid in self.meta:
                self.meta[pid].initial = init

    @classmethod
    def from_reply(
        cls, room_id: str, room_type: RoomType, limits: Limits, reply: list[Any], *,
        max_players: int | None, now: float,
    ) -> tuple[MirrorRoom, bytes]:
        """Build from ``load.lua``'s ``ok`` reply; also returns the log id it is current at."""
        _, version, objects, versions, initial, last_id = reply
        return cls(
            room_id, room_type, limits, version=int(version),
            objects=_pairs(objects, orjson.loads), object_versions=_pairs(versions, int),
            initial=_pairs(initial, orjson.loads), max_players=max_players, now=now,
        ), last_id

    def object_of(self, field: str) -> dict[str, Any] | None:
        table = self.players if field[0] == "p" else self.entities
        return table.get(field[2:])

    def scratch(self, field: str, current: dict[str, Any] | None, *, now: float) -> Room:
        """A room holding only ``current`` (the object a write is based on) to validate on.

        Its size total starts from the mirror's, so its checks match the mirror's;
        the player's meta is shared so room-type bookkeeping (arena move times) holds.
        """
        table = "players" if field[0] == "p" else "entities"
        name = field[2:]
        state = {table: {name: current}} if current is not None else None
        room = Room(
            self.room_id, self.room_type, self.limits, state=state, version=self.version,
            max_players=UNLIMITED, now=now,
        )
        room.state_bytes += self.state_bytes - self._sizes.get((field[0], name), 0)
        if table == "players" and current is not None:
            meta = self.meta.get(name)
            if meta is None:
                meta = self.meta[name] = PlayerMeta(joined_at=now, initial=current)
            room.meta[name] = meta
        return room

    def apply(self, change: Change, *, now: float) -> None:
        """Replay a committed change (its base must be this version)."""
        version, payload = change.version, change.payload
        if change.kind is ChangeKind.JOINED:
            assert payload is not None
            pid, state = payload["playerId"], payload["state"]
            self._put("p", pid, state, version)
            self.meta[pid] = PlayerMeta(joined_at=now, initial=state)
        elif change.kind is ChangeKind.LEFT:
            assert payload is not None
            pid = payload["playerId"]
            self._put("p", pid, None, version)
            self.meta.pop(pid, None)
        else:
            for table, prefix in TABLES.items():
                current = self.players if table == "players" else self.entities
                for name, sub in (change.patch.get(table) or {}).items():
                    if sub is None:
                        self._put(prefix[0], name, None, version)
                    else:
                        self._put(prefix[0], name, apply_patch(current.get(name), sub), version)
                        if table == "players" and name in self.meta:
                            self.room_type.applied(sub, meta=self.meta[name], now=now)
        self.version = version

    def _put(self, kind: str, name: str, value: dict[str, Any] | None, version: int) -> None:
        table = self.players if kind == "p" else self.entities
        key = (kind, name)
        self.state_bytes -= self._sizes.pop(key, 0)
        if value is None:
            table.pop(name, None)
            self.object_versions.pop(f"{kind}:{name}", None)
        else:
            table[name] = value
            size = json_size(value)
            self._sizes[key] = size
            self.state_bytes += size
            self.object_versions[f"{kind}:{name}"] = version

    def seed_args(self) -> list[Any]:
        """``seed.lua`` arguments rebuilding Redis from this mirror (after Redis lost it)."""
        triples: list[Any] = []
        for pid, obj in self.players.items():
            meta = self.meta.get(pid)
            triples += [f"p:{pid}", orjson.dumps(obj), orjson.dumps(meta.initial if meta else obj)]
        for eid, obj in self.entities.items():
            triples += [f"e:{eid}", orjson.dumps(obj), b""]
        return [self.version, len(triples) // 3, *triples]


def seed_args_of(version: int, state: dict[str, Any] | None) -> list[Any]:
    """``seed.lua`` arguments from a database snapshot."""
    state = state or {}
    triples: list[Any] = []
    for pid, obj in (state.get("players") or {}).items():
        data = orjson.dumps(obj)
        triples += [f"p:{pid}", data, data]
    for eid, obj in (state.get("entities") or {}).items():
        triples += [f"e:{eid}", orjson.dumps(obj), b""]
    return [version, len(triples) // 3, *triples]


def change_of(fields: dict[bytes, bytes]) -> Change:
    """A log entry (``v b k p [d]``) as a Change."""
    payload = fields.get(b"d")
    return Change(
        KINDS[fields[b"k"]], int(fields[b"b"]), int(fields[b"v"]), orjson.loads(fields[b"p"]),
        orjson.loads(payload) if payload is not None else None,
    )


def _pairs(flat: list[Any], convert: Any) -> dict[str, Any]:
    return {
        (k.decode() if isinstance(k, bytes) else k): convert(v)
        for k, v in zip(flat[::2], flat[1::2], strict=True)
    }


@dataclass(slots=True)
class MirroredRoom:
    """A room loaded in this process by the Redis store: its configuration, its mirror,
    how far the log has been read, and this process's writes in flight."""

    config: RoomConfig
    room: MirrorRoom
    #: id of the last log entry applied (where the reader's next XREAD starts)
    stream_id: bytes | str
    #: this process's own commits not yet back through the log: field → (object, version)
    recent: dict[str, tuple[dict[str, Any] | None, int]] = field(default_factory=dict)
    waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)
    #: a log gap was seen: the reader reloads the room before applying more
    stale: bool = False
    #: this process holds the room's snapshot lease (it reports changes to persistence)
    snapshot_duty: bool = False
    last_used: float = field(default_factory=time.monotonic)
    #: the room's epoch (§14), as last read from its meta hash
    epoch: str | None = None

    def state(self) -> tuple[int, dict[str, Any]]:
        return self.room.version, self.room.snapshot()

    def base(self, field_name: str) -> tuple[dict[str, Any] | None, str]:
        """The object a write to ``field_name`` starts from, and its version token."""
        recent = self.recent.get(field_name)
        if recent is not None:
            if recent[1] > self.room.version:
                return recent[0], str(recent[1])
            del self.recent[field_name]
        version = self.room.object_versions.get(field_name)
        return self.room.object_of(field_name), "" if version is None else str(version)

    def wait_for(self, version: int) -> asyncio.Future[None]:
        """A future done once the mirror has applied ``version`` (or is reloaded)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append((version, future))
        return future

    def settle(self) -> None:
        """Wake writers waiting for the mirror to reach their version."""
        if self.waiters:
            keep = []
            for version, future in self.waiters:
                if version <= self.room.version:
                    if not future.done():
                        future.set_result(None)
                else:
                    keep.append((version, future))
            self.waiters = keep

    def release_all(self) -> None:
        for _, future in self.waiters:
            if not future.done():
                future.set_result(None)
        self.waiters = []
