"""What a room change is, once applied: the unit of fan-out and persistence."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ChangeKind(StrEnum):
    DELTA = "DELTA_UPDATE"
    JOINED = "PLAYER_JOINED"
    LEFT = "PLAYER_LEFT"


class LeaveReason(StrEnum):
    LEFT = "left"
    TIMEOUT = "timeout"
    KICKED = "kicked"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Change:
    """One applied change: ``patch`` turns the room at ``base_version`` into ``version``.

    DELTA changes may be composed into one DELTA_UPDATE; JOINED and LEFT are
    always sent alone (§5), with ``payload`` as their message payload.
    """

    kind: ChangeKind
    base_version: int
    version: int
    patch: dict[str, Any]
    payload: dict[str, Any] | None = None

    @property
    def player_id(self) -> str | None:
        return self.payload.get("playerId") if self.payload else None
