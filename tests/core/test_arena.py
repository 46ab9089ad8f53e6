"""The arena's rules (§12): the speed rule on every move, spawn points, coins' owner."""

from __future__ import annotations

import pytest

from sync.core.errors import ErrorCode, ProtocolError
from sync.core.limits import Limits
from sync.core.room import Room
from sync.core.room_types import get_room_type


def arena() -> Room:
    return Room("r", get_room_type("arena"), Limits())


def refused(call, *args, **kwargs) -> ErrorCode:
    with pytest.raises(ProtocolError) as info:
        call(*args, **kwargs)
    return info.value.code


def test_a_player_without_a_position_gets_a_spawn_point_on_join():
    room = arena()
    state = room.join("p1", {"playerName": "A"}, now=0).payload["state"]
    assert 0 <= state["x"] <= 1000 and 0 <= state["y"] <= 1000
    partial = room.join("p2", {"x": 10}, now=0).payload["state"]
    assert partial["x"] == 10 and 0 <= partial["y"] <= 1000


def test_deleting_y_then_teleporting_x_is_refused():
    """The v1 bypass: with y gone the speed check was skipped for x."""
    room = arena()
    room.join("p1", {"x": 0, "y": 0}, now=100.0)
    assert refused(room.update_player, "p1", {"y": None}, now=100.1) is ErrorCode.INVALID_UPDATE
    assert refused(room.update_player, "p1", {"x": 1000, "y": None}, now=100.1) is (
        ErrorCode.INVALID_UPDATE)
    assert refused(room.update_player, "p1", {"x": 1000}, now=100.1) is ErrorCode.INVALID_UPDATE
    assert room.players["p1"]["x"] == 0 and room.version == 1


def test_the_rule_holds_along_each_axis_alone():
    room = arena()
    room.join("p1", {"x": 500, "y": 500}, now=100.0)
    # 0.1 s after the join: at most 250 units along either axis.
    assert refused(room.update_player, "p1", {"y": 900}, now=100.1) is ErrorCode.INVALID_UPDATE
    assert room.update_player("p1", {"y": 740}, now=100.1).version == 2
    # measured from the last accepted move, per axis (a diagonal of 240 + 240 is fine)
    assert room.update_player("p1", {"x": 740, "y": 980}, now=100.2).version == 3
    assert refused(room.update_player, "p1", {"x": 400}, now=100.3) is ErrorCode.INVALID_UPDATE


def test_a_position_restored_without_y_cannot_be_used_to_teleport():
    """A player object that somehow lacks y (an old snapshot): x is still checked."""
    room = Room("r", get_room_type("arena"), Limits(),
                state={"players": {"p1": {"x": 0}}, "entities": {}}, now=100.0)
    assert refused(room.update_player, "p1", {"x": 1000}, now=100.1) is ErrorCode.INVALID_UPDATE
    assert room.update_player("p1", {"y": 5}, now=100.1) is not None


def test_clients_cannot_write_coins_but_the_server_can():
    room = arena()
    room.join("p1", {}, now=0)
    assert refused(room.update_entity, "coin-x", {"kind": "coin"}, player_id="p1") is (
        ErrorCode.INVALID_UPDATE)
    assert room.update_entity("coin-x", {"kind": "coin", "x": 1, "y": 1}, player_id=None)
    assert refused(room.update_entity, "coin-x", {"x": None}, player_id="p1") is (
        ErrorCode.INVALID_UPDATE)
