"""The browser pages: the lobby and the room demo (with its staff spectator view).

Thin views: they render a template and hand the page script its settings as
JSON. Everything live (the room list, the room itself) comes from the REST
API and the WebSocket, so these views never read room state. The only write
is the demo's: opening ``/rooms/<roomId>/`` makes sure the room exists as an
``arena`` room, so that any room id typed in a URL is a playable demo, and
``/world/<roomId>/`` does the same with a ``world`` room (§13: a large map where
each player sees only what is near it).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from rooms.models import Room, Visibility
from sync.conf import kasagi_settings
from sync.core.room_types import ArenaRoomType, WorldRoomType, room_type_choices

#: The room type the demo is built for; rooms first opened from its URL get it.
DEMO_ROOM_TYPE = "arena"
#: Share of the arena's speed limit the page moves at, to stay clear of it.
SPEED_MARGIN = 0.8
SPECTATE_VALUES = frozenset({"1", "true", "yes", "on"})


def lobby(request: HttpRequest) -> HttpResponse:
    """``/``: the rooms list (filled by the page from GET /api/rooms/) and the create form."""
    return render(
        request,
        "rooms/lobby.html",
        {
            "room_types": room_type_choices(),
            "default_room_type": DEMO_ROOM_TYPE,
            "visibilities": Visibility.choices,
            "page_config": {
                "apiRooms": "/api/rooms/",
                "roomUrl": "/rooms/{roomId}/",
                "refreshMs": 3000,
                "username": _username(request),
                "isStaff": request.user.is_staff,
            },
        },
    )


def room(request: HttpRequest, room_id: str) -> HttpResponse:
    """``/rooms/<roomId>/``: the demo; ``?spectate=1`` is the staff's read-only view."""
    spectate = request.GET.get("spectate", "").lower() in SPECTATE_VALUES
    if spectate:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("The spectator view is for staff.")
        row = Room.objects.filter(room_id=room_id).first()
    else:
        row = _demo_room(request, room_id)
        if row.room_type == WorldRoomType.name:  # the arena page cannot show a world
            return redirect("rooms:world", room_id=room_id)
    room_type = row.room_type if row is not None else DEMO_ROOM_TYPE
    return render(
        request,
        "rooms/room.html",
        {
            "room_id": room_id,
            "room": row,
            "spectate": spectate,
            "page_config": _room_config(request, room_id, room_type, spectate=spectate),
        },
    )


def world(request: HttpRequest, room_id: str) -> HttpResponse:
    """``/world/<roomId>/``: the world demo (interest management, a private field);
    the room is created as a ``world`` room when this URL is its first use."""
    row = _demo_room(request, room_id, room_type=WorldRoomType.name)
    conf = kasagi_settings()
    interest = WorldRoomType.interest
    assert interest is not None
    return render(
        request,
        "rooms/world.html",
        {
            "room_id": room_id,
            "room": row,
            "page_config": {
                "roomId": room_id,
                "roomType": row.room_type,
                "wsPath": "/sync",
                "apiRoom": f"/api/rooms/{room_id}/",
                "tickMs": conf.tick_ms,
                "worldSize": WorldRoomType.size,
                "cell": WorldRoomType.cell,
                "speed": WorldRoomType.max_speed * SPEED_MARGIN,
                "username": _username(request),
                "lobbyUrl": "/",
            },
        },
    )


def _demo_room(request: HttpRequest, room_id: str, room_type: str = DEMO_ROOM_TYPE) -> Room:
    """The room's row, created as a ``room_type`` room when the demo URL is its first use."""
    owner = request.user if request.user.is_authenticated else None
    row, _ = Room.objects.get_or_create(
        room_id=room_id,
        defaults={"room_type": room_type, "name": room_id, "owner": owner},
    )
    return row


def _room_config(
    request: HttpRequest, room_id: str, room_type: str, *, spectate: bool
) -> dict[str, Any]:
    """What the page script needs: where to connect and the rules it must respect."""
    conf = kasagi_settings()
    return {
        "roomId": room_id,
        "roomType": room_type,
        "spectate": spectate,
        "wsPath": "/sync",
        "tickMs": conf.tick_ms,
        "arenaSize": ArenaRoomType.size,
        "speed": ArenaRoomType.max_speed * SPEED_MARGIN,
        "graceSeconds": conf.grace_period,
        "username": _username(request),
        "lobbyUrl": "/",
    }


def _username(request: HttpRequest) -> str | None:
    return request.user.get_username() if request.user.is_authenticated else None
