"""The browser pages: the lobby at ``/``, the room demo at ``/rooms/<roomId>/`` and
the world demo (interest management) at ``/world/<roomId>/``.

The admin links a room's spectator view as ``reverse("rooms:room", args=[id]) + "?spectate=1"``.
"""

from django.urls import path, re_path

from . import views

app_name = "rooms"

urlpatterns = [
    path("", views.lobby, name="lobby"),
    # roomId as in PROTOCOL §2: [A-Za-z0-9_.-]{1,64}
    re_path(r"^rooms/(?P<room_id>[A-Za-z0-9_.-]{1,64})/$", views.room, name="room"),
    re_path(r"^world/(?P<room_id>[A-Za-z0-9_.-]{1,64})/$", views.world, name="world"),
]
