"""The per-process fan-out, driven by hand: chains stay gapless under any interleaving.

No sockets here: members write into lists, the tick is called directly, and a
member's socket backlog is a number the test sets. The end-to-end tests run
the same hub behind real daphne.
"""

from __future__ import annotations

import asyncio
import copy
from contextlib import contextmanager
from typing import Any
from unittest import mock

import msgpack
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import hub as hub_module
from sync.core.changes import Change, ChangeKind, LeaveReason
from sync.core.codec import JSON, MSGPACK, Codec
from sync.core.limits import Limits
from sync.core.merge_patch import NotComposable, apply_patch, compose
from sync.core.room import Room
from sync.core.room_types import get_room_type
from sync.hub import LAG_HIGH, Hub


class ListWriter:
    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.binary: list[bool] = []
        self.pending = 0

    def write(self, data: bytes, binary: bool = False) -> None:
        self.frames.append(msgpack.unpackb(data) if binary else orjson.loads(data))
        self.binary.append(binary)

    def backlog(self) -> int:
        return self.pending


class Member:
    def __init__(self, player_id: str | None, codec: Codec = JSON) -> None:
        self.player_id = player_id
        self.session_token = "t" if player_id else None
        self.codec = codec
        self.writer = ListWriter()
        self.synced_version = -1
        self.lag = None
        self.needs_full_state = False
        self.detached: list[str] = []

    def on_detached(self, room_id: str, reason: str) -> None:
        self.detached.append(reason)


def replay(frames: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """A client: FULL_STATE then every change in order; asserts the §6 chain."""
    version, state = -1, None
    for frame in frames:
        if frame["type"] == "FULL_STATE":
            version, state = frame["version"], frame["payload"]["state"]
        elif frame["type"] in ("DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT"):
            assert state is not None, "change before FULL_STATE"
            assert frame["baseVersion"] == version, f"gap: at {version}, got {frame}"
            if frame["type"] != "DELTA_UPDATE":
                assert frame["version"] == frame["baseVersion"] + 1
            if frame["type"] == "DELTA_UPDATE":
                state = apply_patch(state, frame["payload"])
            elif frame["type"] == "PLAYER_JOINED":
                state = apply_patch(state, {"players": {frame["payload"]["playerId"]:
                                                        frame["payload"]["state"]}})
            else:
                state = apply_patch(state, {"players": {frame["payload"]["playerId"]: None}})
            version = frame["version"]
    return version, state


def normalized(state: dict[str, Any]) -> dict[str, Any]:
    return {"players": state.get("players", {}), "entities": state.get("entities", {})}


@contextmanager
def hand_driven_room():
    """A hub on a loop that never runs (ticks are called by hand) and one room."""
    loop = asyncio.new_event_loop()
    try:
        hub = Hub(0.05)
        hub._loop = loop
        room = Room("r", get_room_type("freeform"), Limits())
        yield hub, room, hub.room("r", lambda: (room.version, room.snapshot()))
    finally:
        loop.close()


operations = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.booleans()),
        st.tuples(st.just("move"), st.integers(0, 4), st.integers(0, 3)),
        st.tuples(st.just("entity"), st.sampled_from(["a", "b"]), st.integers(0, 2)),
        st.tuples(st.just("leave"), st.integers(0, 4)),
        st.tuples(st.just("flush")),
        st.tuples(st.just("slow"), st.integers(0, 4), st.booleans()),
        st.tuples(st.just("resync"), st.integers(0, 4)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_every_member_sees_a_gapless_chain_that_rebuilds_the_room(ops):
    run_operations(ops)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_chains_hold_when_ticks_are_composed_in_place_from_the_first_change(ops):
    """The same with ``Composer`` composing every tick (a large room's long ticks);
    a published change's patch is never changed by it."""
    with mock.patch.object(hub_module, "IN_PLACE_AFTER", 0):
        run_operations(ops)


def test_a_long_tick_is_composed_in_place_and_leaves_published_changes_alone():
    """Past ``IN_PLACE_AFTER`` changes a tick is composed in place: one DELTA with
    every player's last move, an entity deleted then made again (not composable)
    split off, and no published change's patch touched."""
    with hand_driven_room() as (_hub, room, fanout):
        members = [Member(f"p{i}") for i in range(3)]
        for i, member in enumerate(members):
            room.join(member.player_id, {"x": i}, now=0)
        for member in members:
            fanout.attach(member)
            fanout.send_full_state(member, resumed=False)
        changes = [room.update_entity("e", {"v": 1}, player_id=None)]
        for x in range(hub_module.IN_PLACE_AFTER * 2):
            changes.append(room.update_player(f"p{x % 3}", {"x": x, "o": {"k": x}}, now=0))
        changes.append(room.update_entity("e", {"v": None}, player_id=None))  # deleted
        changes.append(room.update_entity("e", {"v": 2}, player_id=None))  # made again
        changes.append(room.update_player("p0", {"o": {"k": None, "j": 1}}, now=0))
        kept = [copy.deepcopy(change.patch) for change in changes]
        for change in changes:
            fanout.publish(change)
        fanout.flush()
        assert [change.patch for change in changes] == kept
        for member in members:
            version, state = replay(member.writer.frames)
            assert [f["type"] for f in member.writer.frames] == [
                "FULL_STATE", "DELTA_UPDATE", "DELTA_UPDATE"]
            assert version == room.version
            assert normalized(state) == room.snapshot()


tick_patches = st.lists(st.one_of(
    st.builds(lambda p, n: {"players": {f"p{p}": {"x": n}}}, st.integers(0, 3), st.integers()),
    st.builds(lambda p, n: {"players": {f"p{p}": {"o": {"k": n} if n else None}}},
              st.integers(0, 3), st.integers(0, 2)),
    st.builds(lambda p: {"players": {f"p{p}": None}}, st.integers(0, 3)),
    st.builds(lambda p, q: {"players": {f"p{p}": {"y": 1}, f"p{q}": {"y": 2}}},
              st.integers(0, 3), st.integers(0, 3)),
    st.builds(lambda n: {"entities": {"e": {"v": n} if n else None}}, st.integers(0, 2)),
    st.builds(lambda n: {"players": {"p0": {"z": n}}, "entities": {"e": {"w": n}}},
              st.integers(0, 2)),
), max_size=40)


@settings(max_examples=200, deadline=None)
@given(tick_patches)
def test_a_tick_is_the_composition_of_its_changes_and_leaves_them_alone(patches):
    """What ``publish`` keeps pending (composed by copy, in place into the players it
    copied, or by ``Composer``) is ``compose`` of the tick's changes, split where
    they are not composable; no published patch is changed."""
    for in_place_after in (hub_module.IN_PLACE_AFTER, 3):
        with mock.patch.object(hub_module, "IN_PLACE_AFTER", in_place_after), \
                hand_driven_room() as (_hub, _room, fanout):
            kept = copy.deepcopy(patches)
            expected: list[dict[str, Any]] = []
            for version, patch in enumerate(patches):
                fanout.publish(Change(ChangeKind.DELTA, version, version + 1, patch))
                if expected:
                    try:
                        expected[-1] = compose(expected[-1], patch)
                        continue
                    except NotComposable:
                        pass
                expected.append(patch)
            assert [item.patch for item in fanout.items] == expected
            assert patches == kept


def run_operations(ops: list[tuple[Any, ...]]) -> None:
    with hand_driven_room() as (_hub, room, fanout):
        members: list[Member] = []

        published: list[tuple[Any, dict[str, Any]]] = []

        def publish(change):
            if change is not None:
                published.append((change.patch, copy.deepcopy(change.patch)))
                fanout.publish(change)

        for op in ops:
            kind = op[0]
            if kind == "join":
                player_id = f"p{len(members)}" if op[1] else None
                member = Member(player_id)
                if player_id:
                    publish(room.join(player_id, {"n": len(members)}, now=0))
                fanout.attach(member)
                fanout.send_full_state(member, resumed=False)
                members.append(member)
            elif kind == "move" and members:
                member = members[op[1] % len(members)]
                if member.player_id and room.has_player(member.player_id):
                    publish(room.update_player(member.player_id, {"x": op[2],
                                               "o": {"k": op[2]} if op[2] else None}, now=0))
            elif kind == "entity":
                publish(room.update_entity(op[1], {"v": op[2] or None}, player_id=None))
            elif kind == "leave" and members:
                member = members[op[1] % len(members)]
                if member.player_id and room.has_player(member.player_id):
                    publish(room.leave(member.player_id, LeaveReason.TIMEOUT))
            elif kind == "flush":
                fanout.flush()
            elif kind == "slow" and members:
                members[op[1] % len(members)].writer.pending = LAG_HIGH + 1 if op[2] else 0
            elif kind == "resync" and members:
                fanout.send_full_state(members[op[1] % len(members)], resumed=False)
        for member in members:
            member.writer.pending = 0
        fanout.flush()
        fanout.flush()  # a lagging member catches up on the tick after it drained
        for member in members:
            version, state = replay(member.writer.frames)
            assert version == room.version
            assert normalized(state) == room.snapshot()
        assert all(patch == kept for patch, kept in published)


def test_one_tick_sends_one_composed_delta_encoded_once():
    with hand_driven_room() as (hub, room, fanout):
        room.join("p1", {}, now=0)
        a, b = Member("p1"), Member(None)
        for member in (a, b):
            fanout.attach(member)
            fanout.send_full_state(member, resumed=False)
        for x in range(5):
            fanout.publish(room.update_player("p1", {"x": x + 1}, now=0))
        sent: list[bytes] = []
        original = hub.write
        hub.write = lambda member, data: (sent.append(data), original(member, data))
        fanout.flush()
        assert [f["type"] for f in a.writer.frames] == ["FULL_STATE", "DELTA_UPDATE"]
        delta = a.writer.frames[-1]
        assert (delta["baseVersion"], delta["version"]) == (1, 6)
        assert delta["payload"] == {"players": {"p1": {"x": 5}}}
        assert sent[0] is sent[1]  # the same bytes object went to both members


def test_json_and_msgpack_members_get_the_same_frames_each_encoded_once():
    with hand_driven_room() as (hub, room, fanout):
        room.join("p1", {}, now=0)
        members = [Member("p1", JSON), Member(None, MSGPACK), Member(None, JSON),
                   Member(None, MSGPACK)]
        for member in members:
            fanout.attach(member)
            fanout.send_full_state(member, resumed=False)
        for x in range(3):
            fanout.publish(room.update_player("p1", {"x": x}, now=0))
        sent: dict[int, bytes] = {}
        original = hub.write
        hub.write = lambda member, data: (sent.__setitem__(id(member), data),
                                          original(member, data))
        fanout.flush()
        json_a, pack_a, json_b, pack_b = members
        assert json_b.writer.frames == pack_b.writer.frames  # same messages, two encodings
        assert json_a.writer.frames[-1] == pack_a.writer.frames[-1]
        assert json_a.writer.binary == [False, False] and pack_a.writer.binary == [True, True]
        assert sent[id(json_a)] is sent[id(json_b)] and sent[id(pack_a)] is sent[id(pack_b)]
        assert msgpack.unpackb(sent[id(pack_a)]) == orjson.loads(sent[id(json_a)])
        fanout.close()
        fanout.flush()
        assert pack_b.writer.frames[-1]["payload"]["code"] == "ROOM_CLOSED"
        assert pack_b.writer.binary[-1] is True


def test_closing_tells_members_then_detaches_them():
    with hand_driven_room() as (_hub, _room, fanout):
        member = Member(None)
        fanout.attach(member)
        fanout.send_full_state(member, resumed=False)
        fanout.close()
        fanout.flush()
        assert member.writer.frames[-1]["payload"]["code"] == "ROOM_CLOSED"
        assert member.detached == ["closed"]
        assert not fanout.members
