"""One room's authoritative state and the rules that change it.

Every method validates first, then changes state, then returns the
:class:`Change` to fan out (check → do → emit, in that order, always); a
refusal raises ProtocolError and leaves state and version untouched. The
room never mutates a stored object in place (see merge_patch), so a state
snapshot handed out stays valid. Pure: time comes in as ``now``.
"""

from __future__ import annotations

from typing import Any

import orjson

from .changes import Change, ChangeKind, LeaveReason
from .errors import ErrorCode, ProtocolError
from .limits import Limits
from .merge_patch import diff, effective_update
from .room_types import PlayerMeta, RoomType

_DELTA = ChangeKind.DELTA


def json_size(value: Any) -> int:
    return len(orjson.dumps(value))


class Room:
    """State ``{"players": {...}, "entities": {...}}`` plus its version."""

    def __init__(
        self,
        room_id: str,
        room_type: RoomType,
        limits: Limits,
        *,
        state: dict[str, Any] | None = None,
        version: int = 0,
        max_players: int | None = None,
        now: float = 0.0,
    ) -> None:
        self.room_id = room_id
        self.room_type = room_type
        kind = type(room_type)
        #: the type checks nothing in an update but its read-only fields (freeform)
        self._only_server_fields = (
            kind.player_patch is RoomType.player_patch
            and kind.check_fields is RoomType.check_fields)
        #: the type has an ``applied`` hook (the base's does nothing: not called)
        self._applies = kind.applied is not RoomType.applied
        self.limits = limits
        self.max_players = max_players or limits.max_players
        self.version = version
        state = state or {}
        self.players: dict[str, dict[str, Any]] = dict(state.get("players") or {})
        self.entities: dict[str, dict[str, Any]] = dict(state.get("entities") or {})
        self.meta: dict[str, PlayerMeta] = {
            pid: PlayerMeta(joined_at=now, initial=dict(obj)) for pid, obj in self.players.items()
        }
        self._sizes: dict[tuple[str, str], int] = {}
        for pid, obj in self.players.items():
            self._sizes["p", pid] = json_size(obj)
        for eid, obj in self.entities.items():
            self._sizes["e", eid] = json_size(obj)
        self.state_bytes = sum(self._sizes.values())

    # -- reads ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The state as a new document sharing the (never mutated) objects."""
        return {"players": dict(self.players), "entities": dict(self.entities)}

    def has_player(self, player_id: str) -> bool:
        return player_id in self.players

    # -- changes -------------------------------------------------------------

    def join(
        self, player_id: str, fields: dict[str, Any], *, now: float,
        identity: dict[str, Any] | None = None,
    ) -> Change:
        if player_id in self.players:
            raise ProtocolError(ErrorCode.INTERNAL, "player id already in room")
        if len(self.players) >= self.max_players:
            raise ProtocolError(ErrorCode.ROOM_FULL, f"room is full ({self.max_players} players)")
        player = self.room_type.initial_player(fields, identity=identity or {})
        size = self._check_size(("p", player_id), player)
        self.meta[player_id] = PlayerMeta(joined_at=now, initial=player)
        return self._commit(
            ChangeKind.JOINED,
            ("p", player_id),
            size,
            self.players,
            player_id,
            player,
            {"players": {player_id: player}},
            {"playerId": player_id, "state": player},
        )

    def leave(self, player_id: str, reason: LeaveReason) -> Change:
        if player_id not in self.players:
            raise ProtocolError(ErrorCode.NOT_IN_ROOM, "player is not in this room")
        self.meta.pop(player_id, None)
        return self._commit(
            ChangeKind.LEFT,
            ("p", player_id),
            0,
            self.players,
            player_id,
            None,
            {"players": {player_id: None}},
            {"playerId": player_id, "reason": reason.value},
        )

    def update_player(
        self, player_id: str, patch: dict[str, Any], *, now: float,
        expected_version: int | None = None, server: bool = False,
    ) -> Change | None:
        """Apply a merge patch to a player's object; None when it changes nothing."""
        # every inbound STATE_UPDATE comes here: _check_size and _commit are written
        # out for this one case (a player's object replaced, one version)
        players = self.players
        current = players.get(player_id)
        if current is None:
            raise ProtocolError(ErrorCode.NOT_IN_ROOM, "player is not in this room")
        if expected_version is not None:
            self._check_expected(expected_version)
        meta = self.meta[player_id]
        room_type = self.room_type
        if server:
            pass
        elif not self._only_server_fields:
            patch = room_type.player_patch(current, patch, meta=meta, now=now)
        elif not room_type.server_fields.isdisjoint(patch):  # the type's own refusal
            room_type.player_patch(current, patch, meta=meta, now=now)
        effective, updated = effective_update(current, patch)
        if not effective:
            return None
        key = ("p", player_id)
        size = len(orjson.dumps(updated))
        limits = self.limits
        if size > limits.max_player_state_bytes:
            raise ProtocolError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"player state would exceed {limits.max_player_state_bytes} bytes",
            )
        sizes = self._sizes
        state_bytes = self.state_bytes - sizes.get(key, 0) + size
        if state_bytes > limits.max_room_state_bytes:
            raise ProtocolError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"room state would exceed {limits.max_room_state_bytes} bytes",
            )
        if self._applies:
            room_type.applied(effective, meta=meta, now=now)
        self.state_bytes = state_bytes
        sizes[key] = size
        players[player_id] = updated
        base = self.version
        self.version = version = base + 1
        return Change(_DELTA, base, version, {"players": {player_id: effective}})

    def update_entity(
        self, entity_id: str, patch: dict[str, Any], *, player_id: str | None,
        expected_version: int | None = None,
    ) -> Change | None:
        """Merge-patch a shared entity; created if absent, deleted when emptied."""
        current = self.entities.get(entity_id)
        self._check_expected(expected_version)
        patch = self.room_type.entity_patch(entity_id, current, patch, player_id=player_id)
        effective, updated = effective_update(current or {}, patch)
        if not effective:
            return None
        if not updated:
            # An emptied entity is deleted.
            return self._commit(
                ChangeKind.DELTA, ("e", entity_id), 0, self.entities, entity_id, None,
                {"entities": {entity_id: None}},
            )
        size = self._check_size(("e", entity_id), updated)
        return self._commit(
            ChangeKind.DELTA, ("e", entity_id), size, self.entities, entity_id, updated,
            {"entities": {entity_id: effective}},
        )

    def reset(self, state: dict[str, Any] | None = None) -> Change | None:
        """Server reset: entities replaced (default: none), players back to their join state."""
        entities = dict((state or {}).get("entities") or {})
        players = {pid: self.meta[pid].initial for pid in self.players}
        return self._replace(players, entities)

    def restore(self, state: dict[str, Any]) -> Change | None:
        """Back to an earlier ``state`` (§15): its entities, and its objects of the
        players in both; players are never added or removed. None when nothing differs."""
        before = state.get("players") or {}
        players = {pid: before.get(pid, obj) for pid, obj in self.players.items()}
        return self._replace(players, dict(state.get("entities") or {}))

    def _replace(
        self, players: dict[str, dict[str, Any]], entities: dict[str, dict[str, Any]]
    ) -> Change | None:
        """The whole state at once (reset, restore), as one change."""
        old = self.snapshot()
        new = {"players": players, "entities": entities}
        patch = diff(old, new)
        if not patch:
            return None
        sizes = {("p", pid): json_size(obj) for pid, obj in players.items()}
        sizes.update({("e", eid): json_size(obj) for eid, obj in entities.items()})
        total = sum(sizes.values())
        if total > self.limits.max_room_state_bytes:
            raise ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, "room state would exceed its limit")
        base = self.version
        self.players, self.entities = players, entities
        self._sizes, self.state_bytes = sizes, total
        self.version += 1
        return Change(ChangeKind.DELTA, base, self.version, patch)

    # -- internals -----------------------------------------------------------

    def _check_expected(self, expected_version: int | None) -> None:
        if expected_version is not None and expected_version != self.version:
            raise ProtocolError(
                ErrorCode.VERSION_CONFLICT,
                f"expected version {expected_version}, room is at {self.version}",
                extra={"currentVersion": self.version},
            )

    def _check_size(self, key: tuple[str, str], obj: dict[str, Any]) -> int:
        size = json_size(obj)
        if key[0] == "p" and size > self.limits.max_player_state_bytes:
            raise ProtocolError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"player state would exceed {self.limits.max_player_state_bytes} bytes",
            )
        if self.state_bytes - self._sizes.get(key, 0) + size > self.limits.max_room_state_bytes:
            raise ProtocolError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"room state would exceed {self.limits.max_room_state_bytes} bytes",
            )
        return size

    def _commit(
        self,
        kind: ChangeKind,
        key: tuple[str, str],
        size: int,
        table: dict[str, dict[str, Any]],
        name: str,
        value: dict[str, Any] | None,
        patch: dict[str, Any],
        payload: dict[str, Any] | None = None,
    ) -> Change:
        self.state_bytes += size - self._sizes.pop(key, 0)
        if value is None:
            table.pop(name, None)
        else:
            table[name] = value
            self._sizes[key] = size
        base = self.version
        self.version += 1
        return Change(kind, base, self.version, patch, payload)
