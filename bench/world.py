"""``bench.load --room-type world``: the interest-managed world of §13.

Kept apart from the load tool's core: where the players of a world room stand
(spread evenly over a square, by default at the density of 1,000 players on the
whole 10,000-unit world, so a 50-player run has the same neighbours per player
as a 1,000-player one), how the rooms are made ``world`` rooms before the run
(the demo's ``/world/<roomId>/`` page creates one on first use), and the
server's view counters (``/metrics``: frame lists encoded per flush against
members per flush, the "encode once per view" number).
"""

from __future__ import annotations

import math
import urllib.parse
import urllib.request
from typing import Any

WORLD = "world"
WORLD_SIZE = 10_000.0
#: the density the default spread keeps: this many players on the whole world
REFERENCE_PLAYERS = 1000


def http_base(ws_url: str) -> str:
    """``http://host:port`` of the server behind the tool's ``--url``."""
    parts = urllib.parse.urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"


def world_side(per_room: int, spread: float = 0.0) -> float:
    """The side of the square a room's players are spread over."""
    if spread > 0:
        return min(spread, WORLD_SIZE)
    return min(WORLD_SIZE, WORLD_SIZE * math.sqrt(max(per_room, 1) / REFERENCE_PLAYERS))


def world_spot(slot: int, per_room: int, side: float) -> tuple[int, int]:
    """Where the ``slot``-th player of a room joins: the centre of its square of an
    even grid over ``side`` × ``side``."""
    columns = max(1, math.ceil(math.sqrt(per_room)))
    spacing = side / columns
    return (round((slot % columns + 0.5) * spacing), round((slot // columns + 0.5) * spacing))


def create_world_rooms(ws_url: str, room_ids: list[str], timeout: float = 30.0) -> None:
    """Make each room a ``world`` room (the demo page creates it on first use)."""
    base = http_base(ws_url)
    for room_id in room_ids:
        with urllib.request.urlopen(f"{base}/world/{room_id}/", timeout=timeout) as answer:
            if answer.status != 200:
                raise RuntimeError(f"/world/{room_id}/ answered {answer.status}")


def view_counters(ws_url: str) -> dict[str, float] | None:
    """The server's flush counters from ``/metrics`` (None if it does not serve them)."""
    try:
        with urllib.request.urlopen(f"{http_base(ws_url)}/metrics", timeout=30) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    found: dict[str, float] = {}
    for line in text.splitlines():
        for name in ("kasagi_view_encodings_total", "kasagi_view_flush_members_total",
                     "kasagi_tick_seconds_count"):
            if line.startswith(name + " "):
                found[name] = float(line.split()[1])
    return found if "kasagi_view_encodings_total" in found else None


def views_report(
    before: dict[str, float] | None, after: dict[str, float] | None,
) -> dict[str, Any] | None:
    """Encodings per flush against members per flush over the measured window."""
    if not before or not after:
        return None
    encodings = after["kasagi_view_encodings_total"] - before["kasagi_view_encodings_total"]
    members = (after["kasagi_view_flush_members_total"]
               - before["kasagi_view_flush_members_total"])
    flushes = after.get("kasagi_tick_seconds_count", 0) - before.get("kasagi_tick_seconds_count", 0)
    return {
        "flushes": int(flushes),
        "encodings": int(encodings),
        "members": int(members),
        "encodings_per_flush": round(encodings / flushes, 2) if flushes else None,
        "members_per_flush": round(members / flushes, 2) if flushes else None,
        "members_per_encoding": round(members / encodings, 2) if encodings else None,
    }
