"""``rooms.services`` change live rooms only once the caller's transaction commits.

The admin deletes rooms inside ``transaction.atomic``; a site's view may call a
service inside its own. A rollback must leave the live room as it was, and the
transaction must not wait on the store. Real database transactions
(``transaction=True``) and a real in-memory engine of the test's own.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from rooms.models import Room
from rooms.services import room_close, room_create, room_kick_player, room_reset
from sync import api
from sync.core.errors import ErrorCode, ProtocolError
from sync.directory import RoomConfig
from sync.runtime import Runtime

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    """Raised to roll an atomic block back."""


@pytest.fixture
def live_room(engine: Runtime) -> Room:
    """A room row, and the same room live in the engine with one entity."""
    room = room_create(by=None, room_id="live-1")
    engine.store.directory.configs["live-1"] = RoomConfig("live-1")
    api.update_entity("live-1", "door", {"open": True})
    return room


def entities(room_id: str) -> dict[str, Any]:
    state = api.room_state(room_id)
    assert state is not None, "the room is not loaded"
    return state.state["entities"]


def test_a_close_rolled_back_leaves_the_live_room_open(live_room: Room) -> None:
    with pytest.raises(Rollback), transaction.atomic():
        room_close(room=live_room, by=None)
        raise Rollback
    live_room.refresh_from_db()
    assert live_room.closed_at is None
    api.update_entity("live-1", "door", {"open": False})  # not ROOM_CLOSED
    assert entities("live-1") == {"door": {"open": False}}


def test_a_close_inside_a_transaction_acts_when_it_commits(live_room: Room) -> None:
    with transaction.atomic():
        room_close(room=live_room, by=None)
        api.update_entity("live-1", "door", {"open": False})  # still open until the commit
    with pytest.raises(ProtocolError) as refused:
        api.update_entity("live-1", "door", {"open": True})
    assert refused.value.code is ErrorCode.ROOM_CLOSED


def test_a_reset_rolled_back_changes_nothing(live_room: Room) -> None:
    with pytest.raises(Rollback), transaction.atomic():
        assert room_reset(room=live_room, by=None) is None  # queued for the commit
        assert entities("live-1") == {"door": {"open": True}}
        raise Rollback
    assert entities("live-1") == {"door": {"open": True}}


def test_a_reset_acts_at_the_commit_and_at_once_outside_a_transaction(live_room: Room) -> None:
    before = api.room_state("live-1").version
    with transaction.atomic():
        room_reset(room=live_room, by=None, state={"entities": {"goal": {"n": 1}}})
        assert entities("live-1") == {"door": {"open": True}}
    assert entities("live-1") == {"goal": {"n": 1}}
    version = room_reset(room=live_room, by=None)
    assert version is not None and version > before
    assert entities("live-1") == {}


def test_a_kick_waits_for_the_commit_and_its_refusal_is_logged_then(
    live_room: Room, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ProtocolError) as refused:  # outside a transaction: the caller hears
        room_kick_player(room=live_room, player_id="p-nobody", by=None)
    assert refused.value.code is ErrorCode.NOT_IN_ROOM
    with caplog.at_level(logging.ERROR, logger="rooms.services"):
        with pytest.raises(Rollback), transaction.atomic():
            room_kick_player(room=live_room, player_id="p-nobody", by=None)
            raise Rollback
        assert not caplog.records  # rolled back: never tried
        with transaction.atomic():
            room_kick_player(room=live_room, player_id="p-nobody", by=None)
            assert not caplog.records
    assert "could not kick player p-nobody from room live-1" in caplog.text


def test_the_admin_delete_closes_the_live_room_after_its_transaction(
    live_room: Room, admin_client: Client
) -> None:
    answer = admin_client.post(f"/admin/rooms/room/{live_room.pk}/delete/", {"post": "yes"})
    assert answer.status_code == 302
    assert not Room.objects.filter(room_id="live-1").exists()
    with pytest.raises(ProtocolError) as refused:
        api.update_entity("live-1", "door", {"open": False})
    assert refused.value.code is ErrorCode.ROOM_CLOSED
