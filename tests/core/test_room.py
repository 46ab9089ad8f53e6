"""The pure Room: versions, validation before change, limits, room types."""

from __future__ import annotations

import pytest

from sync.core.changes import ChangeKind, LeaveReason
from sync.core.errors import ErrorCode, ProtocolError
from sync.core.limits import Limits
from sync.core.merge_patch import apply_patch
from sync.core.room import Room
from sync.core.room_types import RoomType, get_room_type, register


def make_room(kind: str = "freeform", **limits) -> Room:
    return Room("r", get_room_type(kind), Limits(**limits))


def refused(call, *args, **kwargs) -> ErrorCode:
    with pytest.raises(ProtocolError) as info:
        call(*args, **kwargs)
    return info.value.code


def test_every_applied_change_bumps_the_version_by_one_and_patches_exactly():
    room = make_room()
    state = room.snapshot()
    changes = [
        room.join("p1", {"name": "A"}, now=0),
        room.update_player("p1", {"x": 1, "deep": {"a": 1}}, now=0),
        room.update_entity("doc", {"text": "hi"}, player_id="p1"),
        room.update_entity("doc", {"text": None}, player_id="p1"),  # emptied: deleted
        room.leave("p1", LeaveReason.LEFT),
    ]
    for number, change in enumerate(changes, start=1):
        assert (change.base_version, change.version) == (number - 1, number)
        state = apply_patch(state, change.patch)
    assert state == room.snapshot() == {"players": {}, "entities": {}}
    assert changes[0].kind is ChangeKind.JOINED
    assert changes[-1].payload == {"playerId": "p1", "reason": "left"}


def test_no_op_update_is_not_a_change():
    room = make_room()
    room.join("p1", {"x": 1}, now=0)
    assert room.update_player("p1", {"x": 1, "missing": None}, now=0) is None
    assert room.version == 1


def test_refusals_change_nothing():
    room = make_room(max_player_state_bytes=64, max_room_state_bytes=200, max_players=1)
    room.join("p1", {"x": 1}, now=0)
    before = (room.version, room.snapshot())
    assert refused(room.update_player, "p1", {"blob": "x" * 100}, now=0) is (
        ErrorCode.PAYLOAD_TOO_LARGE)
    assert refused(room.update_entity, "big", {"blob": "x" * 300}, player_id="p1") is (
        ErrorCode.PAYLOAD_TOO_LARGE)
    assert refused(room.update_player, "p1", {"x": 2}, now=0, expected_version=0) is (
        ErrorCode.VERSION_CONFLICT)
    assert refused(room.update_player, "p1", {"userId": 3}, now=0) is ErrorCode.INVALID_UPDATE
    assert refused(room.join, "p2", {}, now=0) is ErrorCode.ROOM_FULL
    assert (room.version, room.snapshot()) == before


def test_version_conflict_reports_the_current_version():
    room = make_room()
    room.join("p1", {}, now=0)
    with pytest.raises(ProtocolError) as info:
        room.update_entity("e", {"a": 1}, player_id="p1", expected_version=7)
    assert info.value.payload()["currentVersion"] == 1
    assert room.update_entity("e", {"a": 1}, player_id="p1", expected_version=1).version == 2


def test_server_fields_are_set_by_the_server_not_the_client():
    room = make_room()
    change = room.join("p1", {"userId": 99, "name": "A"}, now=0,
                       identity={"userId": 5, "username": "ann"})
    assert change.payload["state"] == {"name": "A", "userId": 5, "username": "ann"}
    assert room.update_player("p1", {"score": 1}, now=0, server=True).version == 2


def test_reset_restores_join_state_and_replaces_entities():
    room = make_room()
    room.join("p1", {"name": "A"}, now=0)
    room.update_player("p1", {"x": 5}, now=0)
    room.update_entity("doc", {"t": 1}, player_id="p1")
    before = room.snapshot()
    change = room.reset({"entities": {"board": {"n": 0}}})
    assert apply_patch(before, change.patch) == room.snapshot() == {
        "players": {"p1": {"name": "A"}}, "entities": {"board": {"n": 0}}}


def test_restored_room_keeps_version_and_sizes():
    state = {"players": {"p1": {"x": 1}}, "entities": {"e": {"a": "b"}}}
    room = Room("r", get_room_type("freeform"), Limits(), state=state, version=41)
    assert room.update_player("p1", {"x": 2}, now=0).base_version == 41
    assert room.state_bytes > 0


# -- arena ----------------------------------------------------------------------


def test_arena_clamps_positions_and_validates_fields():
    room = make_room("arena")
    joined = room.join("p1", {"x": -5, "y": 2000, "playerName": "A", "color": "#ff0000"}, now=0)
    assert joined.payload["state"] == {
        "x": 0, "y": 1000, "playerName": "A", "color": "#ff0000", "score": 0}
    assert refused(room.update_player, "p1", {"color": "red"}, now=1) is ErrorCode.INVALID_UPDATE
    assert refused(room.update_player, "p1", {"playerName": ""}, now=1) is (
        ErrorCode.INVALID_UPDATE)
    assert refused(room.update_player, "p1", {"x": "10"}, now=1) is ErrorCode.INVALID_UPDATE
    assert refused(room.update_player, "p1", {"score": 10}, now=1) is ErrorCode.INVALID_UPDATE


def test_arena_speed_is_checked_against_server_time():
    room = make_room("arena")
    room.join("p1", {"x": 0, "y": 0}, now=100.0)
    # 0.1 s after joining: at most 1000 * (0.1 + 0.15) = 250 units.
    assert refused(room.update_player, "p1", {"x": 400}, now=100.1) is ErrorCode.INVALID_UPDATE
    assert room.version == 1
    assert room.update_player("p1", {"x": 200}, now=100.1).version == 2
    # Next move is measured from the last accepted one.
    assert refused(room.update_player, "p1", {"x": 600}, now=100.2) is ErrorCode.INVALID_UPDATE
    assert room.update_player("p1", {"x": 600}, now=100.5).version == 3


def test_a_room_type_is_one_registered_class():
    @register
    class Board(RoomType):
        name = "test-board"
        label = "Test board"

        def entity_patch(self, entity_id, current, patch, *, player_id):
            if player_id is not None and entity_id == "rules":
                raise ProtocolError(ErrorCode.FORBIDDEN, "rules are server-owned")
            return patch

    room = make_room("test-board")
    room.join("p1", {}, now=0)
    assert refused(room.update_entity, "rules", {"a": 1}, player_id="p1") is ErrorCode.FORBIDDEN
    assert room.update_entity("rules", {"a": 1}, player_id=None).version == 2


def test_a_player_update_runs_the_room_types_hooks_or_only_the_read_only_rule():
    room = make_room()
    room.join("p1", {"name": "A"}, now=0, identity={"userId": 5, "username": "ann"})
    with pytest.raises(ProtocolError) as info:
        room.update_player("p1", {"name": "B", "username": "eve"}, now=0)
    assert (info.value.code, info.value.message) == (
        ErrorCode.INVALID_UPDATE, "username is read-only")
    assert room.version == 1 and room.players["p1"]["name"] == "A"

    seen: list[tuple[str, dict]] = []

    class Checked(RoomType):
        name = "test-checked"

        def check_fields(self, patch, current):
            if patch.get("hp", 0) < 0:
                raise ProtocolError(ErrorCode.INVALID_UPDATE, "hp must be >= 0")

        def applied(self, patch, *, meta, now):
            seen.append(("applied", patch))

    class Rewritten(RoomType):
        name = "test-rewritten"

        def player_patch(self, current, patch, *, meta, now):
            return {**patch, "moved": True}

    checked = Room("r", Checked(), Limits())
    checked.join("p1", {}, now=0)
    assert refused(checked.update_player, "p1", {"hp": -1}, now=0) is ErrorCode.INVALID_UPDATE
    checked.update_player("p1", {"hp": 3}, now=0)
    assert seen == [("applied", {"hp": 3})]
    rewritten = Room("r", Rewritten(), Limits())
    rewritten.join("p1", {}, now=0)
    assert rewritten.update_player("p1", {"hp": 3}, now=0).patch == {
        "players": {"p1": {"hp": 3, "moved": True}}}
