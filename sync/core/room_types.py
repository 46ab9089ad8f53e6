"""Room types: the per-room rules a change must pass, and the room's own code.

A room type sees the player's current object and the client's patch and
returns the patch to apply (it may clamp or drop fields) or raises
INVALID_UPDATE. Adding a type is one subclass with ``@register``. The rules
are pure: the clock is passed in as ``now`` (seconds, monotonic).

A type may also have server-side code (§12, docs/room-code.md): hooks named
after what happens (``on_start``, ``on_join``, ``on_leave``, ``on_update``,
``on_tick``), MESSAGE handlers marked ``@handles("kind")``, and timer
handlers named in ``room.call_later``. They are synchronous, get a
:class:`~sync.core.room_code.RoomContext` and act only through it; the
runtime (``sync.room_runner``) runs them once per room across processes.
"""

from __future__ import annotations

import math
import random
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ErrorCode, ProtocolError
from .room_code import HANDLES_ATTR, RoomContext, handles
from .views import SPECTATOR, Interest, Place, private_owners, without_private

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
    #: ``on_tick`` calls per second (0: the type has no simulation step).
    tick_rate: ClassVar[float] = 0.0
    #: An unhandled MESSAGE kind is relayed as EVENT to the other members (the
    #: built-in types); False: it is refused with UNKNOWN_MESSAGE.
    relay_messages: ClassVar[bool] = True
    #: MESSAGE kind → name of the method handling it (collected from ``@handles``).
    message_handlers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers = dict(cls.message_handlers)
        for attr, value in vars(cls).items():
            for kind in getattr(value, HANDLES_ATTR, ()):
                handlers[kind] = attr
        cls.message_handlers = handlers

    # -- room code (§12): override what the game needs ----------------------

    def has_code(self) -> bool:
        """Whether rooms of this type need a runner (any hook, handler or tick)."""
        cls = type(self)
        hooks = ("on_start", "on_join", "on_leave", "on_update", "on_tick")
        return bool(
            cls.tick_rate > 0 or cls.message_handlers
            or any(getattr(cls, h) is not getattr(RoomType, h) for h in hooks)
        )

    def check_join(
        self, players: Mapping[str, Mapping[str, Any]], fields: dict[str, Any], *,
        identity: dict[str, Any],
    ) -> None:
        """Refuse a join before it happens: ``raise forbid("...")`` (or ``refuse``)."""

    def on_start(self, room: RoomContext) -> None:
        """The room's code starts: first load, after a restart, or on another process
        after a fail-over. Pending timers are re-armed by the runtime, not here."""

    def on_join(self, room: RoomContext, player_id: str) -> None:
        """A player joined (its object is in ``room.players``). Not called on resume."""

    def on_leave(self, room: RoomContext, player_id: str, reason: str) -> None:
        """A player left (``left``, ``timeout``, ``kicked``, ``closed``); its object is gone."""

    def on_update(self, room: RoomContext, player_id: str, patch: dict[str, Any]) -> None:
        """A client's accepted update of its own object (``patch`` as stored)."""

    def on_tick(self, room: RoomContext, dt: float) -> None:
        """The fixed-rate step (``tick_rate`` per second); ``dt`` seconds since the last."""

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
        if not self.server_fields.isdisjoint(patch):
            owned = self.server_fields.intersection(patch)
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

    # -- views (§13, docs/views.md): what each member sees ---------------------

    #: A value-dependent view (objects seen by place: a grid, teams), or None (the
    #: path-local ``view_of`` alone; the hub then keeps no places, the common case).
    interest: ClassVar[Interest | None] = None

    #: ``view_audience(patch)``: the players whose view of ``patch`` may differ from
    #: everyone else's (spectators included), or None when everyone sees all of it.
    #: Called once per change; default: the players whose object in it has a ``_``
    #: field (``private_owners`` itself: a call fewer per change). Override it as a method.
    view_audience = staticmethod(private_owners)

    def view_of(self, doc: dict[str, Any], viewer: str | None) -> dict[str, Any]:
        """The part of ``doc`` (a room state, or a change's merge patch) that the
        member ``viewer`` (None: a spectator) sees. It must be path-local: drop
        keys by where they are, never by their values, and never add or change
        any. Default: other players' private (``_``) fields are left out."""
        return without_private(doc, viewer)


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
NUMBER = (int, float)
_ABSENT: Any = object()


class PlaneRoomType(RoomType):
    """Players on a square plane (``size``): positions ``x``, ``y`` in 0..size, clamped,
    at a bounded speed (the arena's rules); a spawn position when JOIN_ROOM gives none."""

    name = "plane"  # not registered: the base of "arena" and "world"
    size: ClassVar[float] = 1000.0
    #: Units per second along each axis, plus a fixed allowance for network jitter.
    max_speed: ClassVar[float] = 1000.0
    jitter_seconds: ClassVar[float] = 0.15
    _spawns: ClassVar[random.Random] = random.Random()

    def initial_player(self, fields: dict[str, Any], *, identity: dict[str, Any]) -> dict[str, Any]:
        """A player without a position gets a spawn point: every player here has x and y."""
        player = super().initial_player(fields, identity=identity)
        for axis in ("x", "y"):
            if axis not in player:
                player[axis] = self.spawn_coordinate()
        return player

    def spawn_coordinate(self) -> float:
        return round(self._spawns.uniform(0.1, 0.9) * self.size)

    def check_fields(self, patch: dict[str, Any], current: dict[str, Any]) -> None:
        # on every move: one lookup per axis, the clamp as two comparisons
        for axis in ("x", "y"):
            value = patch.get(axis, _ABSENT)
            if value is _ABSENT:
                continue
            if value is None:
                raise invalid(f"{axis} of a {self.name} player cannot be deleted")
            kind = type(value)
            if (kind is not int and kind is not float) or not math.isfinite(value):
                raise invalid(f"{axis} must be a number between 0 and {self.size:g}")
            if value < 0:  # min(max(value, 0), size)
                patch[axis] = 0
            elif value > self.size:
                patch[axis] = self.size
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
        """The speed rule holds for every move along either axis, whatever the player
        holds: a move is checked per axis against the last accepted one (the join
        counts as the first move)."""
        patch = super().player_patch(current, dict(patch), meta=meta, now=now)
        get = patch.get
        x, y = get("x", _ABSENT), get("y", _ABSENT)
        if x is not _ABSENT or y is not _ABSENT:
            since = meta.last_move_at
            if since is None:
                since = meta.joined_at
            elapsed = now - since
            allowed = self.max_speed * ((0.0 if elapsed < 0.0 else elapsed) + self.jitter_seconds)
            # x then y, written out (no tuple of pairs per move)
            if x is not _ABSENT:
                old = current.get("x")
                kind = type(old)
                if (kind is int or kind is float) and abs(x - old) > allowed:
                    raise self._too_fast()
            if y is not _ABSENT:
                old = current.get("y")
                kind = type(old)
                if (kind is int or kind is float) and abs(y - old) > allowed:
                    raise self._too_fast()
        return patch

    def _too_fast(self) -> ProtocolError:
        return invalid(f"move too fast: at most {self.max_speed:g} units per second")

    def applied(self, patch: dict[str, Any], *, meta: PlayerMeta, now: float) -> None:
        if "x" in patch or "y" in patch:
            meta.last_move_at = now


@register
class ArenaRoomType(PlaneRoomType):
    """The demo game (docs/protocol.md, "arena"): positions in 0..size at a bounded
    speed, a server-owned score, and coins the server places and players take."""

    name = "arena"
    label = "Arena (demo game)"
    server_fields = SERVER_FIELDS | {"score"}
    max_coins: ClassVar[int] = 3
    coin_radius: ClassVar[float] = 30.0
    #: seconds between a coin being needed (first join, a coin taken) and placed
    coin_delay: ClassVar[float] = 1.0

    def server_defaults(self) -> dict[str, Any]:
        return {"score": 0}

    def entity_patch(
        self, entity_id: str, current: dict[str, Any] | None, patch: dict[str, Any], *,
        player_id: str | None,
    ) -> dict[str, Any]:
        if player_id is not None and entity_id.startswith("coin-"):
            raise invalid("coins are placed and removed by the server")
        return patch

    # -- room code: coins ------------------------------------------------------

    def on_start(self, room: RoomContext) -> None:
        if room.players:
            self._want_coin(room)

    def on_join(self, room: RoomContext, player_id: str) -> None:
        self._want_coin(room)
        self._take_coins(room, player_id)

    def on_update(self, room: RoomContext, player_id: str, patch: dict[str, Any]) -> None:
        if "x" in patch or "y" in patch:
            self._take_coins(room, player_id)

    def place_coin(self, room: RoomContext, data: Any) -> None:
        """Timer handler: one new coin, and another timer while fewer than max."""
        room.server.pop("coinTimer", None)
        if not room.players:
            return
        if len(self._coins(room)) < self.max_coins:
            rng = room.random
            room.update_entity(f"coin-{secrets.token_hex(6)}", {
                "kind": "coin",
                "x": round(rng.uniform(0.05, 0.95) * self.size),
                "y": round(rng.uniform(0.05, 0.95) * self.size),
            })
        self._want_coin(room)

    def _want_coin(self, room: RoomContext) -> None:
        timer = room.server.get("coinTimer")
        if timer is not None and any(t.timer_id == timer for t in room.timers()):
            return
        if len(self._coins(room)) < self.max_coins and room.players:
            room.server["coinTimer"] = room.call_later(self.coin_delay, "place_coin")

    def _take_coins(self, room: RoomContext, player_id: str) -> None:
        player = room.players.get(player_id)
        if player is None:
            return
        x, y = player.get("x"), player.get("y")
        if type(x) not in NUMBER or type(y) not in NUMBER:
            return
        for coin_id, coin in self._coins(room).items():
            cx, cy = coin.get("x"), coin.get("y")
            if type(cx) not in NUMBER or type(cy) not in NUMBER:
                continue
            if math.hypot(cx - x, cy - y) <= self.coin_radius:  # type: ignore[operator]
                score = int(room.players[player_id].get("score") or 0) + 1
                room.delete_entity(coin_id)
                room.update_player(player_id, {"score": score})
                room.send_event(
                    "coin.taken", {"coinId": coin_id, "playerId": player_id, "score": score})
        self._want_coin(room)

    @staticmethod
    def _coins(room: RoomContext) -> dict[str, Mapping[str, Any]]:
        return {eid: e for eid, e in room.entities.items() if eid.startswith("coin-")}


class GridInterest(Interest):
    """Spatial interest on a square grid of ``cell``-unit cells: an object with numeric,
    finite ``x`` and ``y`` is in the cell holding it (the far edges belong to the last
    cells), one without is seen by everyone; a member sees the 3 × 3 cells around its
    own, so every object within ``cell`` on both axes and none beyond ``2 * cell``; a
    spectator sees everything. Members in the same cell share one view."""

    fields = frozenset({"x", "y"})

    def __init__(self, cell: float, size: float) -> None:
        self.cell = cell
        self.size = size
        self.cells = max(1, math.ceil(size / cell))
        self._near: dict[Place, frozenset[Place]] = {}

    def cell_of(self, value: float) -> int:
        index = int(value // self.cell)
        if index == self.cells and value <= self.size:
            return index - 1  # the far edge (x == size) is in the last cell
        return index

    def place(self, section: str, key: str, obj: Any) -> Place | None:
        # on every FULL_STATE for every object: kept to a few operations
        if type(obj) is not dict:
            return None
        x: Any = obj.get("x")
        y: Any = obj.get("y")
        tx, ty = type(x), type(y)
        if (tx is not int and tx is not float) or (ty is not int and ty is not float):
            return None  # bool is neither
        cell = self.cell
        try:
            cx, cy = int(x // cell), int(y // cell)
        except (OverflowError, ValueError):  # inf, nan
            return _NOWHERE
        cells = self.cells
        if cx == cells and x <= self.size:
            cx -= 1
        if cy == cells and y <= self.size:
            cy -= 1
        return (cx, cy)

    def near(self, at: Place | None) -> frozenset[Place] | None:
        if at is None or at is SPECTATOR:
            return None
        cached = self._near.get(at)
        if cached is None:
            cx: int
            cy: int
            cx, cy = at  # type: ignore[misc]
            cached = self._near[at] = frozenset(
                (cx + dx, cy + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1))
        return cached


#: the place of an object at an infinite position: nobody's neighbourhood
_NOWHERE = ("nowhere",)


@register
class WorldRoomType(PlaneRoomType):
    """A large world with interest management (§13, docs/protocol.md "world"): a
    10,000 × 10,000 plane with the arena's movement rules; each member sees the
    players and positioned entities in the 3 × 3 cells of 1,000 units around it."""

    name = "world"
    label = "World (interest management)"
    size = 10_000.0
    #: the interest cell (units): a member sees |dx|, |dy| <= cell, never > 2 * cell
    cell: ClassVar[float] = 1000.0
    interest = GridInterest(cell, size)
    #: where the server puts a player whose JOIN_ROOM gives no position: one of these,
    #: chosen at random, within ``spawn_spread`` units on each axis
    spawn_points: ClassVar[tuple[tuple[float, float], ...]] = tuple(
        (x, y) for x in (2500.0, 5000.0, 7500.0) for y in (2500.0, 5000.0, 7500.0))
    spawn_spread: ClassVar[float] = 400.0

    def initial_player(self, fields: dict[str, Any], *, identity: dict[str, Any]) -> dict[str, Any]:
        """JOIN_ROOM may choose a position (``x`` and ``y``, clamped); an axis it does
        not give comes from a spawn point."""
        sx, sy = self._spawns.choice(self.spawn_points)
        spread = self.spawn_spread
        chosen = {k: v for k, v in fields.items() if k not in ("x", "y") or v is not None}
        chosen.setdefault("x", round(sx + self._spawns.uniform(-spread, spread)))
        chosen.setdefault("y", round(sy + self._spawns.uniform(-spread, spread)))
        return super().initial_player(chosen, identity=identity)


__all__ = [
    "GridInterest", "PlayerMeta", "RoomType", "WorldRoomType", "get_room_type", "handles",
    "invalid", "register",
]
