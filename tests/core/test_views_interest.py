"""Value-dependent views (§13): places decide what each member sees.

For random rooms of the ``world`` room type (and of a 4 × 4-cell world) and of
a team game, random members and random changes (moves across cells, private
fields, team changes, entities gaining or losing a position or a team), every
member's frames rebuild exactly its view (``view_state``) at every version it
reaches, its chain is gapless, and no frame carries an object it may not see,
nor the removal of one it never held nor saw. (A member whose own player joins
or leaves in the changes it is sent gets a FULL_STATE right after that frame:
where it stands came from or went to nowhere.) Then the same through the hub
driven by hand, with slow members, resyncs and several members per cell
sharing frames.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.core.changes import LeaveReason
from sync.core.codec import JSON, MSGPACK
from sync.core.limits import Limits
from sync.core.merge_patch import apply_patch
from sync.core.room import Room
from sync.core.room_types import GridInterest, RoomType, WorldRoomType
from sync.core.views import (
    SPECTATOR,
    Interest,
    InterestIndex,
    interest_frames,
    union,
    view_state,
)
from sync.hub import LAG_HIGH, Hub, Pending
from tests.core.test_hub import Member


class SmallWorld(WorldRoomType):
    """The world's rules on a 40 × 40 plane of 10-unit cells (4 × 4 cells)."""

    name = "test-small-world"
    size = 40.0
    cell = 10.0
    interest = GridInterest(10.0, 40.0)


class TeamInterest(Interest):
    """Players see the players of their own team (and those without one); an entity
    with a ``team`` is seen by that team only: setting or clearing it makes the entity
    private or public. Spectators and players without a team see everything."""

    fields = frozenset({"team"})

    def place(self, section: str, key: str, obj: Any) -> Any:
        team = obj.get("team") if type(obj) is dict else None
        return None if team is None else ("team", team)

    def near(self, at: Any) -> Any:
        if at is None or at is SPECTATOR:
            return None
        return frozenset({at})


class TeamsRoomType(RoomType):
    name = "test-teams"
    interest: ClassVar[Interest | None] = TeamInterest()


SMALL = SmallWorld()
TEAMS = TeamsRoomType()
WORLD = WorldRoomType()
RULES = {"small-world": SMALL, "world": WORLD, "teams": TEAMS}


# -- helpers ------------------------------------------------------------------------


def normalized(state: dict[str, Any]) -> dict[str, Any]:
    return {"players": state.get("players") or {}, "entities": state.get("entities") or {}}


def replay(
    frames: list[dict[str, Any]], viewer: str | None, states: dict[int, dict[str, Any]],
    rule: RoomType,
) -> int:
    """Apply ``frames`` like a client; at every version reached the state must be
    ``view_state`` of the room at that version. Returns the last version reached."""
    version, state = -1, None
    for frame in frames:
        kind = frame["type"]
        payload = frame["payload"]
        if kind == "FULL_STATE":
            version, state = frame["version"], payload["state"]
        else:
            assert state is not None, "change before FULL_STATE"
            assert frame["baseVersion"] == version, f"gap: at {version}, got {frame}"
            assert frame["version"] > version
            if kind == "DELTA_UPDATE":
                for section in ("players", "entities"):
                    for key, value in (payload.get(section) or {}).items():
                        if value is None:  # a removal of what it holds, or saw in between
                            assert key in state[section] or any(
                                key in normalized(view_state(rule, states[v], viewer))[section]
                                for v in range(frame["baseVersion"] + 1, frame["version"])
                            ), (viewer, frame, state)
                        elif key not in state[section]:  # an arrival: in its view now
                            assert key in normalized(
                                view_state(rule, states[frame["version"]], viewer))[section], (
                                viewer, frame)
                state = apply_patch(state, payload)
            else:
                assert frame["version"] == frame["baseVersion"] + 1
                value = payload["state"] if kind == "PLAYER_JOINED" else None
                if value is None:
                    assert payload["playerId"] in state["players"], (viewer, frame)
                state = apply_patch(state, {"players": {payload["playerId"]: value}})
            version = frame["version"]
            if kind != "DELTA_UPDATE" and payload["playerId"] == viewer:
                # its own join or leave: where it stands is new, a FULL_STATE follows
                # (or, having left, it is detached)
                continue
        players = state["players"]
        for player_id, obj in players.items():
            if player_id != viewer:
                assert not [k for k in obj if k.startswith("_")], (viewer, frame)
        assert normalized(state) == normalized(view_state(rule, states[version], viewer)), (
            viewer, version, frame)
    return version


ops = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(0, 4), st.integers(0, 40), st.integers(0, 40),
                  st.sampled_from([None, "red", "blue"])),
        st.tuples(st.just("move"), st.integers(0, 4), st.integers(-12, 12), st.integers(-12, 12)),
        st.tuples(st.just("secret"), st.integers(0, 4), st.integers(0, 2)),
        st.tuples(st.just("team"), st.integers(0, 4), st.sampled_from([None, "red", "blue"])),
        st.tuples(st.just("entity"), st.integers(0, 2),
                  st.one_of(st.none(), st.tuples(st.integers(0, 40), st.integers(0, 40))),
                  st.sampled_from([None, "red", "blue"]), st.integers(0, 2)),
        st.tuples(st.just("drop"), st.integers(0, 2)),
        st.tuples(st.just("leave"), st.integers(0, 4)),
        st.tuples(st.just("reset")),
    ),
    min_size=5,
    max_size=50,
)


def apply_op(room: Room, op: tuple) -> Any:
    """One random change to ``room`` (as the server makes it), or None."""
    kind = op[0]
    player_id = f"p{op[1]}" if len(op) > 1 else ""
    present = room.has_player(player_id)
    # positions are drawn on a 40-unit plane, scaled to the room type's
    scale = room.room_type.size / 40 if isinstance(room.room_type, WorldRoomType) else 1
    if kind == "join" and not present:
        fields = {"x": op[2] * scale, "y": op[3] * scale, "_s": op[1]}
        if op[4] is not None:
            fields["team"] = op[4]
        return room.join(player_id, fields, now=0)
    if kind == "move" and present:
        obj = room.players[player_id]
        size = room.room_type.size if isinstance(room.room_type, WorldRoomType) else 40
        x = min(max(obj.get("x", 0) + op[2] * scale, 0), size)
        y = min(max(obj.get("y", 0) + op[3] * scale, 0), size)
        return room.update_player(player_id, {"x": x, "y": y}, now=0, server=True)
    if kind == "secret" and present:
        return room.update_player(player_id, {"_s": op[2] or None}, now=0, server=True)
    if kind == "team" and present:
        return room.update_player(player_id, {"team": op[2]}, now=0, server=True)
    if kind == "entity":
        where = op[2]
        patch = {"x": where[0] * scale if where else None,
                 "y": where[1] * scale if where else None,
                 "team": op[3], "v": op[4]}
        return room.update_entity(f"e{op[1]}", patch, player_id=None)
    if kind == "drop" and f"e{op[1]}" in room.entities:
        return room.update_entity(f"e{op[1]}", {k: None for k in room.entities[f"e{op[1]}"]},
                                  player_id=None)
    if kind == "leave" and present:
        return room.leave(player_id, LeaveReason.LEFT)
    if kind == "reset":
        return room.reset({"entities": {"e0": {"x": 5 * scale, "y": 5 * scale, "v": 1}}})
    return None


def run_room(rule: RoomType, script: list[tuple]) -> tuple[list, dict[int, dict[str, Any]]]:
    room = Room("r", rule, Limits())
    changes, states = [], {0: room.snapshot()}
    for op in script:
        change = apply_op(room, op)
        if change is not None:
            changes.append(change)
            states[change.version] = room.snapshot()
    return changes, states


START = [("join", 0, 1, 1, "red"), ("join", 1, 35, 35, "blue"), ("join", 2, 12, 3, None)]


# -- the pure functions -------------------------------------------------------------


@settings(max_examples=250, deadline=None)
@given(ops, st.sampled_from(sorted(RULES)), st.data())
def test_interest_frames_rebuild_each_view_at_every_version(script, rule_name, data):
    rule = RULES[rule_name]
    changes, states = run_room(rule, START + script)
    last = changes[-1].version
    assert rule.interest is not None
    for viewer in ("p0", "p1", "p2", "p3", None):
        start = data.draw(st.integers(0, last))
        frames = [{"type": "FULL_STATE", "version": start,
                   "payload": {"state": view_state(rule, states[start], viewer)}}]
        index = InterestIndex(rule.interest, start, states[start])
        items = [Pending.of(c, rule) for c in changes if c.version > start]
        sent = start
        while items:
            cut = data.draw(st.integers(1, len(items)))
            batch, items = items[:cut], items[cut:]
            places = index.advance(batch)
            audience = None
            for item in batch:
                audience = union(audience, item.audience)
            private = viewer if audience is not None and viewer in audience else None
            more, sent, seen, resync = interest_frames(
                "r", batch, 0, places, sent=sent, viewer=private,
                trajectory=places.trajectory(viewer, 0), rule=rule, timestamp=0,
                hold=data.draw(st.booleans()))
            frames += more
            if resync:  # its own join or leave: the hub sends its view now
                sent = batch[-1].version
                frames.append({"type": "FULL_STATE", "version": sent,
                               "payload": {"state": view_state(rule, states[sent], viewer)}})
            else:
                assert seen == batch[-1].version
        reached = replay(frames, viewer, states, rule)
        assert reached == sent
        # what is still folded is invisible to it
        assert normalized(view_state(rule, states[reached], viewer)) == normalized(
            view_state(rule, states[last], viewer))


def test_the_world_grid_sees_within_one_cell_and_never_beyond_two():
    world = WorldRoomType()
    grid = world.interest
    assert isinstance(grid, GridInterest)
    at = grid.place("players", "a", {"x": 4500, "y": 4500})
    assert at == (4, 4)
    assert grid.place("players", "b", {"x": 10000, "y": 0}) == (9, 0)  # the far edge
    assert grid.place("entities", "c", {"x": "1", "y": 2}) is None  # not numeric: everyone
    near = grid.near(at)
    for dx, dy in [(1000, 1000), (-1000, 0), (0, -1000), (-1000, -1000)]:
        assert grid.place("players", "b", {"x": 4500 + dx, "y": 4500 + dy}) in near
    for dx, dy in [(2001, 0), (0, -2001), (-2600, 2600)]:
        assert grid.place("players", "b", {"x": 4500 + dx, "y": 4500 + dy}) not in near
    assert grid.near(SPECTATOR) is None


def test_a_member_sees_near_players_and_itself_and_a_spectator_sees_all():
    world = WorldRoomType()
    room = Room("w", world, Limits())
    room.join("a", {"x": 500, "y": 500, "_secret": "#aa0000"}, now=0)
    room.join("b", {"x": 1400, "y": 1900}, now=0)
    room.join("c", {"x": 8000, "y": 8000}, now=0)
    room.update_entity("near", {"x": 100, "y": 100}, player_id=None)
    room.update_entity("far", {"x": 9000, "y": 100}, player_id=None)
    room.update_entity("sign", {"text": "hello"}, player_id=None)
    state = room.snapshot()
    mine = view_state(world, state, "a")
    assert sorted(mine["players"]) == ["a", "b"] and mine["players"]["a"]["_secret"]
    assert sorted(mine["entities"]) == ["near", "sign"]
    assert sorted(view_state(world, state, "c")["players"]) == ["c"]
    everyone = view_state(world, state, None)
    assert sorted(everyone["players"]) == ["a", "b", "c"]
    assert "_secret" not in everyone["players"]["a"]
    assert "_secret" not in view_state(world, state, "b")["players"]["a"]


def test_world_rules_clamp_spawn_and_limit_speed():
    from sync.core.errors import ProtocolError
    from sync.core.room_types import PlayerMeta

    world = WorldRoomType()
    spawned = world.initial_player({"color": "#123456"}, identity={})
    assert any(abs(spawned["x"] - sx) <= 400 and abs(spawned["y"] - sy) <= 400
               for sx, sy in world.spawn_points)
    chosen = world.initial_player({"x": 12000, "y": -5}, identity={})
    assert (chosen["x"], chosen["y"]) == (10000, 0)
    meta = PlayerMeta(joined_at=0.0)
    assert world.player_patch({"x": 0, "y": 0}, {"x": 900}, meta=meta, now=1.0) == {"x": 900}
    try:
        world.player_patch({"x": 0, "y": 0}, {"y": 5000}, meta=meta, now=1.0)
    except ProtocolError as exc:
        assert "too fast" in exc.message
    else:
        raise AssertionError("a 5000-unit move in one second was accepted")


# -- through the hub ----------------------------------------------------------------


@contextmanager
def hand_driven(rule: RoomType):
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        hub = Hub(0.05)
        hub._loop = loop
        room = Room("r", rule, Limits())
        yield hub, room, hub.room("r", lambda: (room.version, room.snapshot()), room_type=rule)
    finally:
        loop.close()


hub_ops = st.lists(
    st.one_of(
        ops.flatmap(lambda script: st.just(("change", script))),
        st.tuples(st.just("member"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("flush")),
        st.tuples(st.just("slow"), st.integers(0, 9), st.booleans()),
        st.tuples(st.just("resync"), st.integers(0, 9)),
    ),
    min_size=5,
    max_size=30,
)


@settings(max_examples=120, deadline=None)
@given(hub_ops, st.sampled_from(sorted(RULES)))
def test_through_the_hub_every_member_holds_its_view_and_a_gapless_chain(script, rule_name):
    rule = RULES[rule_name]
    with hand_driven(rule) as (_hub, room, fanout):
        states = {0: room.snapshot()}
        members: list[Member] = []

        def change(op: tuple) -> None:
            made = apply_op(room, op)
            if made is not None:
                states[made.version] = room.snapshot()
                fanout.publish(made)

        for op in START:
            change(op)
        for op in script:
            kind = op[0]
            if kind == "change":
                for sub in op[1][:8]:
                    change(sub)
            elif kind == "member":
                # a second connection playing p<n> (or a spectator) gets a FULL_STATE now
                member = Member(f"p{op[1]}" if op[2] else None,
                                MSGPACK if len(members) % 3 == 2 else JSON)
                fanout.attach(member)
                fanout.send_full_state(member, resumed=False)
                members.append(member)
            elif kind == "flush":
                fanout.flush()
            elif kind == "slow" and members:
                members[op[1] % len(members)].writer.pending = LAG_HIGH + 1 if op[2] else 0
            elif kind == "resync" and members:
                fanout.send_full_state(members[op[1] % len(members)], resumed=False)
        for member in members:
            member.writer.pending = 0
        fanout.flush()
        fanout.flush()
        for member in members:
            reached = replay(member.writer.frames, member.player_id, states, rule)
            assert member.synced_version == room.version
            assert normalized(view_state(rule, states[reached], member.player_id)) == normalized(
                view_state(rule, room.snapshot(), member.player_id))


def test_members_in_one_cell_share_frames_and_views_follow_a_move_in_the_same_tick():
    from sync.metrics import METRICS

    with hand_driven(SMALL) as (hub, room, fanout):
        room.join("a", {"x": 1, "y": 1}, now=0)  # cell (0, 0)
        room.join("b", {"x": 2, "y": 2}, now=0)  # cell (0, 0)
        room.join("c", {"x": 35, "y": 35}, now=0)  # cell (3, 3): far from a and b
        room.join("d", {"x": 25, "y": 25}, now=0)  # cell (2, 2)
        fanout.reindex()
        members = {pid: Member(pid) for pid in ("a", "b", "c", "d")}
        for member in members.values():
            fanout.attach(member)
            fanout.send_full_state(member, resumed=False)
        assert sorted(members["a"].writer.frames[-1]["payload"]["state"]["players"]) == ["a", "b"]
        sent: dict[str | None, bytes] = {}
        original = hub.write
        hub.write = lambda m, data: (sent.__setitem__(m.player_id, data), original(m, data))
        before = METRICS.flush_encodings, METRICS.flush_members
        fanout.publish(room.update_player("a", {"x": 3}, now=0, server=True))
        fanout.publish(room.update_player("c", {"x": 34}, now=0, server=True))
        fanout.flush()
        assert sent["a"] is sent["b"]  # one cell, one encoding
        assert members["a"].writer.frames[-1]["payload"] == {"players": {"a": {"x": 3}}}
        assert members["d"].writer.frames[-1]["payload"] == {"players": {"c": {"x": 34}}}
        assert (METRICS.flush_encodings - before[0], METRICS.flush_members - before[1]) == (3, 4)
        # a walks to cell (1, 1): in the same tick it sees d arrive whole (without d's
        # secret, changed in that tick too), and d sees a arrive whole
        fanout.publish(room.update_player("a", {"x": 15, "y": 15}, now=0, server=True))
        fanout.publish(room.update_player("d", {"_secret": "#00ff00"}, now=0, server=True))
        fanout.flush()
        assert members["a"].writer.frames[-1]["payload"] == {
            "players": {"a": {"x": 15, "y": 15}, "d": {"x": 25, "y": 25}}}
        assert members["d"].writer.frames[-1]["payload"] == {
            "players": {"a": {"x": 15, "y": 15}, "d": {"_secret": "#00ff00"}}}
        # a walks to cell (0, 3): out of d's and b's views, removed with null
        fanout.publish(room.update_player("a", {"x": 0, "y": 40}, now=0, server=True))
        fanout.flush()
        assert members["d"].writer.frames[-1]["payload"] == {"players": {"a": None}}
        assert members["b"].writer.frames[-1]["payload"] == {"players": {"a": None}}
        assert len(members["c"].writer.frames) == 2  # FULL_STATE, its own move: never saw a


def test_a_member_that_saw_nothing_of_a_tick_gets_its_versions_folded_into_the_next():
    # members in step share their frames' lookup by place; one holding versions back
    # (nothing in its view changed) must not take a neighbour's frames from later on
    with hand_driven(SMALL) as (_hub, room, fanout):
        room.join("a", {"x": 1, "y": 1}, now=0)  # cell (0, 0)
        room.join("b", {"x": 35, "y": 35}, now=0)  # cell (3, 3)
        room.join("c", {"x": 36, "y": 36}, now=0)  # cell (3, 3)
        fanout.reindex()
        members = {pid: Member(pid) for pid in ("a", "b", "c")}
        for member in members.values():
            fanout.attach(member)
            fanout.send_full_state(member, resumed=False)
        start = room.version
        fanout.publish(room.update_player("b", {"x": 34}, now=0, server=True))
        fanout.flush()
        assert fanout.unsent == {id(members["a"]): start}
        fanout.publish(room.update_player("a", {"x": 2}, now=0, server=True))
        fanout.publish(room.update_player("c", {"x": 37}, now=0, server=True))
        fanout.flush()
        a, b, c = (members[pid].writer.frames[-1] for pid in ("a", "b", "c"))
        assert (a["baseVersion"], a["version"], a["payload"]) == (
            start, start + 3, {"players": {"a": {"x": 2}}})
        assert (b["baseVersion"], b["version"], b["payload"]) == (
            start + 1, start + 3, {"players": {"c": {"x": 37}}})
        assert c == b
        assert not fanout.unsent


@settings(max_examples=150, deadline=None)
@given(ops, st.sampled_from(sorted(RULES)))
def test_the_index_looks_up_the_same_view_as_a_scan_of_the_state(script, rule_name):
    rule = RULES[rule_name]
    changes, states = run_room(rule, START + script)
    assert rule.interest is not None
    index = InterestIndex(rule.interest, 0, states[0])
    index.advance([Pending.of(c, rule) for c in changes])
    last = states[changes[-1].version]
    for viewer in ("p0", "p1", "p2", "p3", None):
        assert normalized(index.view(rule, last, viewer)) == normalized(
            view_state(rule, last, viewer))
