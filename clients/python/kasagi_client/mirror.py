"""The local mirror of one room's state, kept exact by the version chain (PROTOCOL.md §6).

A plain object with no I/O, no clock and no asyncio: the client feeds it
FULL_STATEs, RESUMEDs and state-changing events and acts on the
:class:`ChainOutcome` it returns (send RESYNC on ``GAP``). That keeps the
ordering rules testable without a server. It also remembers the epoch of the
state it holds (§14), so that a resume can ask for the missed changes only.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from .events import Delta, FullState, PlayerJoined, PlayerLeft, Resumed, StateChange
from .merge_patch import apply_merge_patch, is_noop

__all__ = ["ChainOutcome", "StateMirror"]


class ChainOutcome(StrEnum):
    """What the mirror did with a state-changing message."""

    APPLIED = "applied"
    """It continued the chain and is now part of the state."""
    STALE = "stale"
    """Its version is not newer than the mirror's: a duplicate or an old message, ignored."""
    GAP = "gap"
    """Its ``baseVersion`` is not the mirror's version: the caller must RESYNC."""
    OUT_OF_SYNC = "out_of_sync"
    """Dropped because an earlier gap is still waiting for its FULL_STATE."""
    OTHER_ROOM = "other_room"
    """No FULL_STATE loaded yet, or the message is about another room: ignored."""


class StateMirror:
    """Room state at ``version`` as seen by this connection, plus who we are in it."""

    def __init__(self) -> None:
        self.room_id: str | None = None
        self.player_id: str | None = None
        self.version: int | None = None
        self.state: dict[str, Any] | None = None
        #: the room's epoch (§14) of the FULL_STATE the state comes from
        self.epoch: str | None = None
        self.in_sync = False

    def reset(self) -> None:
        """Forget the room (after leaving it or when a rejoin is refused)."""
        self.room_id = self.player_id = None
        self.version = None
        self.state = None
        self.epoch = None
        self.in_sync = False

    def load(self, full: FullState) -> None:
        """Replace everything with a snapshot, whatever its version (§5 FULL_STATE)."""
        self.room_id = full.room_id
        self.player_id = full.player_id
        self.version = full.version
        self.state = full.state
        self.epoch = full.epoch
        self.in_sync = True

    def recovery_point(self, room_id: str) -> tuple[int, str] | None:
        """``(sinceVersion, epoch)`` to send when resuming ``room_id`` (§14), or None.

        The state at ``version`` is exact even after a gap (the frames that did
        not chain were never applied), so a resume may always name it; None when
        the mirror holds another room or the server gave no epoch (a 1.0 server).
        """
        if self.room_id != room_id or self.version is None or self.state is None:
            return None
        if self.epoch is None:
            return None
        return self.version, self.epoch

    def resume(self, resumed: Resumed) -> bool:
        """Keep the state on RESUMED (§14) and follow the chain from its version again.

        False (nothing changed) when the answer does not name the state held:
        another room, version or epoch. The caller then asks for a FULL_STATE.
        """
        if (
            self.state is None
            or resumed.room_id != self.room_id
            or resumed.version != self.version
            or resumed.epoch != self.epoch
        ):
            return False
        self.player_id = resumed.player_id
        self.in_sync = True
        return True

    def apply(self, change: StateChange) -> ChainOutcome:
        """Apply ``change`` if it continues the chain; say why not otherwise."""
        if self.version is None or self.state is None or change.room_id != self.room_id:
            return ChainOutcome.OTHER_ROOM
        if change.version <= self.version:
            return ChainOutcome.STALE
        if not self.in_sync:
            return ChainOutcome.OUT_OF_SYNC
        if change.base_version != self.version:
            self.in_sync = False
            return ChainOutcome.GAP
        self.state = _apply_change(self.state, change)
        self.version = change.version
        return ChainOutcome.APPLIED

    def own_player(self) -> dict[str, Any] | None:
        """Our player object, or None for a spectator or when not in a room."""
        if self.state is None or self.player_id is None:
            return None
        players = self.state.get("players")
        found = players.get(self.player_id) if isinstance(players, Mapping) else None
        return found if isinstance(found, dict) else None

    def entity(self, entity_id: str) -> dict[str, Any] | None:
        """A shared entity, or None when it does not exist."""
        entities = self.state.get("entities") if self.state is not None else None
        found = entities.get(entity_id) if isinstance(entities, Mapping) else None
        return found if isinstance(found, dict) else None

    def reflects(self, patch: Mapping[str, Any], *, entity_id: str | None = None) -> bool:
        """True when the mirror already holds what ``patch`` would write.

        Used to confirm an acknowledged update: either its DELTA has been
        applied, or it was a no-op because the values were already there.
        An absent object counts as ``{}`` (an emptied entity is deleted).
        """
        if self.state is None:
            return False
        if entity_id is None:
            if self.player_id is None:
                return False
            current: dict[str, Any] = self.own_player() or {}
        else:
            current = self.entity(entity_id) or {}
        return is_noop(current, patch)


def _replace_player(
    state: dict[str, Any], player_id: str, value: dict[str, Any] | None
) -> dict[str, Any]:
    """Copy-on-write of ``state["players"][player_id]`` (None removes it)."""
    old = state.get("players")
    players = dict(old) if isinstance(old, Mapping) else {}
    if value is None:
        players.pop(player_id, None)
    else:
        players[player_id] = value
    return {**state, "players": players}


def _apply_change(state: dict[str, Any], change: StateChange) -> dict[str, Any]:
    match change:
        case Delta():
            patched = apply_merge_patch(state, change.patch)
            return patched if isinstance(patched, dict) else {}
        case PlayerJoined():
            return _replace_player(state, change.player_id, change.state)
        case PlayerLeft():
            return _replace_player(state, change.player_id, None)
    raise TypeError(f"not a state change: {change!r}")
