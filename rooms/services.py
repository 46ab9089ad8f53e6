"""Writes about rooms, shared by the REST API, the admin and a site's own code.

Each service checks its input, changes the rows, then acts on the live room
through ``sync.api`` (which reaches the members in whichever process holds
them, as far as the store does). The live change waits for the caller's
database transaction to commit (``transaction.on_commit``, as
``rooms.signals`` does): a rollback changes no live room, and no transaction
stays open while the store answers. Permission checks belong to the caller
(``rooms.selectors.user_may_close``...): services trust ``by``, which is
recorded in the log, and in the room's history (§15) as the change's author with
``source`` (``admin`` unless the caller says otherwise: the REST API says ``api``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, router, transaction
from django.utils import timezone

from sync import api as live_api
from sync.core.changes import Author, Source
from sync.core.envelope import ID_PATTERN
from sync.core.room_types import get_room_type

from . import documents, history
from .models import Room, Visibility

logger = logging.getLogger(__name__)

R = TypeVar("R")


def room_create(
    *,
    by: Any,
    room_id: str,
    name: str = "",
    room_type: str = "freeform",
    visibility: str = Visibility.PUBLIC,  # type: ignore[assignment]
    max_players: int | None = None,
) -> Room:
    """A new open room owned by ``by`` (None or anonymous: no owner).

    Raises ValidationError for a bad or duplicate ``room_id``, an unknown room
    type or visibility.
    """
    if not isinstance(room_id, str) or not ID_PATTERN.fullmatch(room_id):
        raise ValidationError({"room_id": "must be 1 to 64 characters of A-Z a-z 0-9 _ . -"})
    try:
        get_room_type(room_type)
    except KeyError:
        raise ValidationError({"room_type": f"unknown room type {room_type!r}"}) from None
    if max_players is not None and max_players < 1:
        raise ValidationError({"max_players": "must be at least 1"})
    owner = by if by is not None and by.is_authenticated else None
    room = Room(
        room_id=room_id,
        name=name or room_id,
        room_type=room_type,
        visibility=visibility,
        max_players=max_players,
        owner=owner,
    )
    room.full_clean()
    try:
        with transaction.atomic():
            room.save()
    except IntegrityError:
        raise ValidationError({"room_id": "a room with this roomId already exists"}) from None
    logger.info("room %s created by %s", room_id, by)
    return room


def author_of(by: Any, source: Source = Source.ADMIN) -> Author:
    """The history's author of a change made by the Django user ``by``."""
    if getattr(by, "is_authenticated", False):
        return Author(source, by.pk if type(by.pk) is int else str(by.pk), by.get_username())
    return Author(source)


def room_close(*, room: Room, by: Any, source: Source = Source.ADMIN) -> None:
    """Close a room for good: its row is marked closed, then (once that commits) its
    members get PLAYER_LEFT ``closed`` and ERROR ``ROOM_CLOSED`` on their next room
    message."""
    if room.closed_at is None:
        room.closed_at = timezone.now()
        room.save(update_fields=["closed_at"])
    # Also when the row was already closed: a live room left open elsewhere is closed too.
    author = author_of(by, source)
    _on_commit(lambda: live_api.close_room(room.room_id, by=author),
               f"close room {room.room_id}")
    logger.info("room %s closed by %s", room.room_id, by)


def room_reset(*, room: Room, by: Any, state: dict[str, Any] | None = None) -> int | None:
    """Reset the live room (entities from ``state``, players back to their join
    state); returns the new version. Raises ProtocolError (ROOM_CLOSED...).

    Inside a transaction the reset waits for the commit and this returns None."""
    author = author_of(by)
    version = _on_commit(lambda: live_api.reset_room(room.room_id, state, by=author),
                         f"reset room {room.room_id}")
    logger.info("room %s reset by %s (v%s)", room.room_id, by, version)
    return version


def room_kick_player(*, room: Room, player_id: str, by: Any) -> None:
    """Remove a player now (PLAYER_LEFT ``kicked``), or once the caller's transaction
    commits. Raises ProtocolError NOT_IN_ROOM when the player is not in the room
    (outside a transaction; inside one the refusal is logged at the commit)."""
    author = author_of(by)
    _on_commit(lambda: live_api.kick_player(room.room_id, player_id, by=author),
               f"kick player {player_id} from room {room.room_id}")
    logger.info("player %s kicked from room %s by %s", player_id, room.room_id, by)


def room_restore(
    *, room: Room, version: int, by: Any, source: Source = Source.ADMIN,
) -> int | None:
    """Set the live room back to its state at ``version`` (§15): entities, and the
    players present both now and then, as one change of kind ``restore``; the new
    version (the current one when nothing differs). None when ``version`` is outside
    the room's kept history. Raises ProtocolError (ROOM_CLOSED...). Not deferred to a
    commit: the state it restores is read now."""
    state = history.room_state_at(room=room, version=version)
    if state is None:
        return None
    new = live_api.restore_room(room.room_id, state, by=author_of(by, source))
    logger.info("room %s restored to v%s by %s (v%s)", room.room_id, version, by, new)
    return new


def document_clear(*, room: Room, doc_id: str, by: Any) -> None:
    """Empty a room's document (§16): the live copy (every process) and its stored row.
    Members still connected keep their copies; see ``sync.api.clear_document``."""
    live_api.clear_document(room.room_id, doc_id)
    documents.document_clear(room=room, doc_id=doc_id)
    logger.info("document %s of room %s cleared by %s", doc_id, room.room_id, by)


def room_announce(*, room: Room, text: str, by: Any) -> None:
    """Send EVENT ``announcement`` ``{"text", "by"}`` to every member of a live room
    (an operator's message: maintenance, a tournament starting...). Not state."""
    by_name = by.get_username() if getattr(by, "is_authenticated", False) else None
    _on_commit(
        lambda: live_api.send_event(
            room.room_id, "announcement", {"text": text, "by": by_name}),
        f"announce in room {room.room_id}")
    logger.info("announcement in room %s by %s", room.room_id, by)


def _on_commit(change: Callable[[], R], what: str) -> R | None:
    """Run a live ``change`` once the current transaction commits.

    Outside a transaction (autocommit: a plain view, a command) that is at once, and
    the caller gets the result and the refusal. Inside one it is queued with
    ``transaction.on_commit`` (dropped on rollback) and None is returned; a refusal
    then is logged, since the rows have committed and nobody is left to tell.
    """
    using = router.db_for_write(Room)
    if not transaction.get_connection(using).in_atomic_block:
        return change()

    def after_commit() -> None:
        try:
            change()
        except Exception:
            logger.exception("could not %s after the transaction committed", what)

    transaction.on_commit(after_commit, using=using)
    return None
