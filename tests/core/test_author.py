"""Who made a change (§15): the Author value, its log-entry form, and the record kind."""

from __future__ import annotations

from sync.core.changes import (
    SERVER,
    Author,
    HistoryKind,
    LeaveReason,
    Source,
    history_kind,
)
from sync.core.limits import Limits
from sync.core.room import Room
from sync.core.room_types import get_room_type


def test_an_author_survives_the_log_entry_and_a_missing_one_is_the_server() -> None:
    for author in (Author.player(7, "ann", "p-1"), Author.player(), SERVER,
                   Author(Source.ADMIN, "6f1c-uuid", "op").doing(HistoryKind.RESTORE)):
        assert Author.from_wire(author.wire) == author
    assert Author.from_wire(None) == SERVER and Author.from_wire(b"") == SERVER
    assert Author.from_wire(b"not json") == SERVER
    assert Author.player(None, "ignored").username is None  # no user, no name


def test_the_record_kind_follows_the_change_and_its_author() -> None:
    room = Room("r", get_room_type("freeform"), Limits())
    player = Author.player(1, "ann", "p")
    joined = room.join("p", {}, now=0)
    moved = room.update_player("p", {"x": 1}, now=0)
    wrote = room.update_entity("doc", {"t": 1}, player_id="p")
    served = room.update_entity("doc", {"t": 2}, player_id=None)
    reset = room.reset()
    left = room.leave("p", LeaveReason.LEFT)
    assert None not in (moved, wrote, served, reset)
    assert [history_kind(c, a) for c, a in (  # type: ignore[arg-type]
        (joined, player), (moved, player), (wrote, player), (served, SERVER),
        (reset, SERVER.doing(HistoryKind.RESET)), (left, player),
    )] == ["join", "update", "entity", "server", "reset", "leave"]
