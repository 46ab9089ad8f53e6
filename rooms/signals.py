"""A saved room configuration reaches the live room at once.

The engine reads a room's configuration (visibility, members, player limit)
when it loads the room; these receivers tell it when the admin, a view or a
shell changed it later, after the transaction commits. With Redis every
process that has the room loaded re-reads it; in one process only a running
engine has live rooms to update, so a process without one (a management
command) does nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from sync import runtime
from sync.conf import kasagi_settings

from .models import Room

logger = logging.getLogger(__name__)

#: fields the engine's RoomConfig is built from
CONFIG_FIELDS = frozenset({"name", "room_type", "visibility", "owner", "max_players"})


def room_saved(sender: Any, instance: Room, created: bool, update_fields: Any,
               **kwargs: Any) -> None:
    if created or (update_fields is not None and not CONFIG_FIELDS & set(update_fields)):
        return
    _after_commit(instance.room_id)


def members_changed(sender: Any, instance: Any, action: str, reverse: bool,
                    **kwargs: Any) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        _after_commit(instance.room_id)
    else:  # user.member_rooms.add(room): the rooms are in pk_set
        for room_id in Room.objects.filter(pk__in=kwargs.get("pk_set") or ()).values_list(
                "room_id", flat=True):
            _after_commit(room_id)


def _after_commit(room_id: str) -> None:
    if kasagi_settings().redis_url or runtime.current() is not None:
        transaction.on_commit(lambda: _reconfigure(room_id))


def _reconfigure(room_id: str) -> None:
    from sync.api import reconfigure_room

    try:
        reconfigure_room(room_id)
    except Exception:  # the save stands; the room picks the change up when next loaded
        logger.exception("could not apply the new configuration of room %s", room_id)
