"""Room types: the per-room rules a change must pass before it is applied.

A room type sees the player's current object and the client's patch and
returns the patch to apply (it may clamp or drop fields) or raises
INVALID_UPDATE. Adding a type is one subclass with ``@register``. Pure: the
clock is passed in as ``now`` (seconds, monotonic).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ErrorCode, ProtocolError

#: Fields no client may write in any room type; the server fills them in.
SERVER_FIELDS: frozenset[str] = frozenset({"userId", "username"})


@dataclass(slots=True)
class PlayerMeta:
    """Server-side facts about a player that are not part of the room state."""

    joined_at: float
    last_move_at: float | None = None
    initial: dict[str, Any] = field(default_factory=dict)


class RoomType:
    """Freeform base: any JSON within the limits; subclasses add rules."""

    name: ClassVar[str] = "freeform"
    label: ClassVar[str] = "Freeform (any JSON)"
    #: Player fields owned by the server (read-only to clients).
    server_fields: ClassVar[frozenset[str]] = SERVER_FIELDS

    def initial_player(self, fields: dict[str, Any], *, identity: dict[str, Any]) -> dict[str, Any]:
        """The new player's object from JOIN_ROOM fields; server fields are set, not taken."""
        player = {k: v for k, v in fields.items() if k not in self.server_fields and v is not None}
        self.check_fields(player, {})
        player.update(self.server_defaults())
        player.update(identity)
        return player

    def server_defaults(self) -> dict[str, Any]:
        return {}

    def player_patch(
        self, current: dict[str, Any], patch: dict[str, Any], *, meta: PlayerMeta, now: float
    ) -> dict[str, Any]:
        """Validate a client's patch to its own player object; return what to apply."""
        owned = self.server_fields.intersection(patch)
        if owned:
            raise invalid(f"{sorted(owned)[0]} is read-only")
        self.check_fields(patch, current)
        return patch

    def check_fields(self, patch: dict[str, Any], current: dict[str, Any]) -> None:
        """Per-field rules shared by join and update; freeform has none."""

    def applied(self, patch: dict[str, Any], *, meta: PlayerMeta, now: float) -> None:
        """Called after a player's patch was stored (e.g. to remember move times)."""

    def entity_patch(
        self, entity_id: str, current: dict[str, Any] | None, patch: dict[str, Any], *,
        player_id: str | None,
    ) -> dict[str, Any]:
        """Validate a patch to a shared entity (``player_id`` None: the server)."""
        return patch


def invalid(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_UPDATE, message)


_REGISTRY: dict[str, RoomType] = {}


def register(cls: type[RoomType]) -> type[RoomType]:
    """Class decorator: make a room type available by its ``name``."""
    _REGISTRY[cls.name] = cls()
    return cls


def get_room_type(name: str) -> RoomType:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown room type {name!r}") from None


def room_type_choices() -> list[tuple[str, str]]:
    return [(name, rt.label) for name, rt in sorted(_REGISTRY.items())]


register(RoomType)


COLOR_PATTERN = re.compile(r"#[0-9A-Fa-f]{6}")


@register
class ArenaRoomType(RoomType):
    """The demo game (seed §8.2): bounded positions, bounded speed, server-owned score."""

    name = "arena"
    label = "Arena (demo game)"
    server_fields = SERVER_FIELDS | {"score"}
    size: ClassVar[float] = 1000.0
    #: Units per second, plus a fixed allowance for network jitter.
    max_speed: ClassVar[float] = 1000.0
    jitter_seconds: ClassVar[float] = 0.15

    def server_defaults(self) -> dict[str, Any]:
        return {"score": 0}

    def check_fields(self, patch: dict[str, Any], current: dict[str, Any]) -> None:
        for axis in ("x", "y"):
            if axis in patch:
                value = patch[axis]
                if type(value) not in (int, float) or not math.isfinite(value):
                    raise invalid(f"{axis} must be a number between 0 and {self.size:g}")
                patch[axis] = min(max(value, 0), self.size)
        if "playerName" in patch:
            name = patch["playerName"]
            if type(name) is not str or not 1 <= len(name.strip()) <= 32:
                raise invalid("playerName must be a string of 1 to 32 characters")
        if "color" in patch:
            color = patch["color"]
            if type(color) is not str or not COLOR_PATTERN.fullmatch(color):
                raise invalid("color must be a #RRGGBB string")

    def player_patch(
        self, current: dict[str, Any], patch: dict[str, Any], *, meta: PlayerMeta, now: float
    ) -> dict[str, Any]:
        patch = super().player_patch(current, dict(patch), meta=meta, now=now)
        if "x" in patch or "y" in patch:
            x0, y0 = current.get("x"), current.get("y")
            if type(x0) in (int, float) and type(y0) in (int, float):
                x1, y1 = patch.get("x", x0), patch.get("y", y0)
                since = meta.last_move_at if meta.last_move_at is not None else meta.joined_at
                allowed = self.max_speed * (max(now - since, 0.0) + self.jitter_seconds)
                if math.hypot(x1 - x0, y1 - y0) > allowed:
                    raise invalid(f"move too fast: at most {self.max_speed:g} units per second")
        return patch

    def applied(self, patch: dict[str, Any], *, meta: PlayerMeta, now: float) -> None:
        if "x" in patch or "y" in patch:
            meta.last_move_at = now
