"""Hot potato: a complete small game written as room code (docs/room-code.md).

Rules: with two or more players in the room a round starts and one of them
holds the potato. The holder passes it on with MESSAGE ``pass`` ``{"to":
playerId}``; anyone else trying is refused. When the round's 10 seconds run
out, the holder loses a life and a new round starts. The room shows the
countdown (a tick at 5 Hz updates ``secondsLeft``), tells everyone who passed
to whom (EVENT ``potato.passed``), tells the new holder alone (EVENT
``potato.yours``) and announces the loser (EVENT ``round.over``). It counts
rounds in server-only data, which no client sees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sync.core.room_code import RoomContext, forbid, handles, refuse
from sync.core.room_types import SERVER_FIELDS, RoomType, register


@register
class HotPotatoRoomType(RoomType):
    name = "potato"
    label = "Hot potato (example game)"
    #: clients cannot write their lives: only this code does
    server_fields = SERVER_FIELDS | {"lives"}
    #: on_tick five times a second (the countdown); 0 would mean no tick
    tick_rate = 5.0
    #: a MESSAGE kind this code does not handle is refused with UNKNOWN_MESSAGE
    relay_messages = False
    round_seconds = 10.0

    def server_defaults(self) -> dict[str, Any]:
        return {"lives": 3}

    # -- who comes and goes --------------------------------------------------------

    def check_join(
        self, players: Mapping[str, Mapping[str, Any]], fields: dict[str, Any], *,
        identity: dict[str, Any],
    ) -> None:
        """Refuse a second player with a name already in the room (ERROR FORBIDDEN)."""
        name = fields.get("playerName")
        if name is not None and any(p.get("playerName") == name for p in players.values()):
            raise forbid(f"the name {name!r} is taken in this room")

    def on_start(self, room: RoomContext) -> None:
        room.server.setdefault("rounds", 0)

    def on_join(self, room: RoomContext, player_id: str) -> None:
        if "holder" not in (room.entities.get("game") or {}) and len(room.players) >= 2:
            self._start_round(room, holder=player_id)

    def on_leave(self, room: RoomContext, player_id: str, reason: str) -> None:
        game = room.entities.get("game") or {}
        if game.get("holder") != player_id:
            return
        others = sorted(room.players)
        if others:
            room.update_entity("game", {"holder": room.random.choice(others)})
        else:
            self._stop_round(room)

    # -- what players send -------------------------------------------------------------

    @handles("pass")
    def pass_potato(self, room: RoomContext, player_id: str, data: Any) -> None:
        game = room.entities.get("game") or {}
        if game.get("holder") != player_id:
            raise refuse("only the player holding the potato can pass it")
        target = data.get("to") if isinstance(data, dict) else None
        if target == player_id or target not in room.players:
            raise refuse("pass the potato to another player in the room")
        room.update_entity("game", {"holder": target})
        room.send_event("potato.passed", {"from": player_id, "to": target})
        room.send_event("potato.yours", {"secondsLeft": game.get("secondsLeft")}, to=target)

    # -- time ------------------------------------------------------------------------------

    def on_tick(self, room: RoomContext, dt: float) -> None:
        game = room.entities.get("game") or {}
        ends_at = game.get("endsAt")
        if ends_at is None:
            return
        left = max(0, math.ceil(ends_at / 1000 - room.now))
        if left != game.get("secondsLeft"):
            room.update_entity("game", {"secondsLeft": left})

    def end_round(self, room: RoomContext, data: Any) -> None:
        """Timer handler (named in ``call_later``): the holder loses a life."""
        game = room.entities.get("game") or {}
        loser = game.get("holder")
        if loser in room.players:
            lives = int(room.players[loser].get("lives", 0)) - 1
            room.update_player(loser, {"lives": lives})
            room.send_event("round.over", {"loser": loser, "lives": lives})
        self._stop_round(room)
        if len(room.players) >= 2:
            self._start_round(room, holder=room.random.choice(sorted(room.players)))

    # -- helpers ------------------------------------------------------------------------------

    def _start_round(self, room: RoomContext, *, holder: str) -> None:
        room.server["rounds"] = room.server.get("rounds", 0) + 1
        ends_at = int((room.now + self.round_seconds) * 1000)
        room.server["roundTimer"] = room.call_later(self.round_seconds, "end_round")
        room.update_entity("game", {
            "holder": holder, "round": room.server["rounds"], "endsAt": ends_at,
            "secondsLeft": int(self.round_seconds),
        })
        room.send_event("potato.yours", {"secondsLeft": int(self.round_seconds)}, to=holder)

    def _stop_round(self, room: RoomContext) -> None:
        timer = room.server.pop("roundTimer", None)
        if timer is not None:
            room.cancel(timer)
        room.delete_entity("game")


@register
class TickerRoomType(RoomType):
    """Benchmark-only: a ball the server moves at 20 Hz (``bench/ticks.py``, docs/performance.md).

    Not a game: it exists to measure what a ticking room costs. Each tick moves
    the entity ``ball`` by its velocity (kept in server-only data, as a real
    game would keep its simulation state), bounces it off the edges of the
    0..1000 field, and writes the new position and the tick count ``n`` as one
    ordinary server change (a version and a DELTA_UPDATE to the members). ``n``
    lets a client count the ticks it saw. Players write nothing but their own
    object.
    """

    name = "ticker"
    label = "Ticker (benchmark: a ball moved at 20 Hz)"
    tick_rate = 20.0

    def on_start(self, room: RoomContext) -> None:
        if "v" not in room.server:
            angle = room.random.uniform(0, 2 * math.pi)
            room.server["v"] = [300 * math.cos(angle), 300 * math.sin(angle)]  # units/s
        if "ball" not in room.entities:
            room.update_entity("ball", {"kind": "ball", "x": 500.0, "y": 500.0, "n": 0})

    def on_tick(self, room: RoomContext, dt: float) -> None:
        ball = room.entities.get("ball") or {}
        velocity = room.server["v"]
        position = [float(ball.get("x", 500.0)), float(ball.get("y", 500.0))]
        for axis in (0, 1):
            moved = position[axis] + velocity[axis] * dt
            if not 0.0 <= moved <= 1000.0:  # bounce: reflect the overshoot
                velocity[axis] = -velocity[axis]
                moved = -moved if moved < 0 else 2000.0 - moved
            position[axis] = min(max(moved, 0.0), 1000.0)
        room.update_entity("ball", {
            "x": round(position[0], 1), "y": round(position[1], 1), "n": int(ball.get("n", 0)) + 1,
        })
