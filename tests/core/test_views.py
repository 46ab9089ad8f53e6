"""Views (§13): private player fields, room-type views, folded versions.

The pure part (``sync.core.views``) is checked on its own and through the
hub driven by hand (as in test_hub): for random rooms, members and change
sequences, every member's frames rebuild exactly its view of the room at
every version it reaches, its chain is gapless, and no frame ever carries
what it may not see (not even the deletion of another player's secret).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.core.changes import ChangeKind, LeaveReason
from sync.core.codec import JSON, MSGPACK
from sync.core.limits import Limits
from sync.core.merge_patch import apply_patch
from sync.core.room import Room
from sync.core.room_types import RoomType, get_room_type
from sync.core.views import (
    member_frames,
    private_owners,
    public_state,
    union,
    view_patch,
    without_private,
)
from sync.hub import LAG_HIGH, Hub, Pending
from tests.core.test_hub import Member

FREEFORM = get_room_type("freeform")


class HandsRoomType(RoomType):
    """A card game as a site would write it (docs/views.md): entity ``hand-<playerId>``
    is seen only by that player; the table and everything else by everyone."""

    name = "test-hands"

    def view_audience(self, patch: dict[str, Any]) -> frozenset[str] | None:
        entities = patch.get("entities") or {}
        hands = frozenset(eid[5:] for eid in entities if eid.startswith("hand-"))
        return union(super().view_audience(patch), hands or None)

    def view_of(self, doc: dict[str, Any], viewer: str | None) -> dict[str, Any]:
        doc = super().view_of(doc, viewer)
        entities = doc.get("entities")
        own = f"hand-{viewer}"
        if not entities or not any(e.startswith("hand-") and e != own for e in entities):
            return doc
        return {**doc, "entities": {
            e: v for e, v in entities.items() if not e.startswith("hand-") or e == own}}


HANDS = HandsRoomType()


# -- helpers ----------------------------------------------------------------------


def replay_views(
    frames: list[dict[str, Any]], viewer: str | None, states: dict[int, dict[str, Any]],
    rule: RoomType, *, held: bool = True,
) -> int:
    """Apply ``frames`` like a client; at every version reached, the state must be the
    member's view of the room at that version. Returns the last version reached.

    ``held``: an invisible change never makes a frame by itself (no empty player
    entries; a ``{}`` DELTA only right before a PLAYER_JOINED/LEFT)."""
    version, state = -1, None
    for index, frame in enumerate(frames):
        kind = frame["type"]
        if kind == "DELTA_UPDATE" and held:
            players = frame["payload"].get("players") or {}
            assert {} not in players.values(), frame
            if frame["payload"] == {}:
                following = frames[index + 1]["type"] if index + 1 < len(frames) else None
                assert following in ("PLAYER_JOINED", "PLAYER_LEFT"), frames[index:]
        if kind == "FULL_STATE":
            version, state = frame["version"], frame["payload"]["state"]
        elif kind in ("DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT"):
            assert state is not None, "change before FULL_STATE"
            assert frame["baseVersion"] == version, f"gap: at {version}, got {frame}"
            assert frame["version"] > version
            payload = frame["payload"]
            if kind == "DELTA_UPDATE":
                state = apply_patch(state, payload)
            else:
                assert frame["version"] == frame["baseVersion"] + 1
                value = payload["state"] if kind == "PLAYER_JOINED" else None
                state = apply_patch(state, {"players": {payload["playerId"]: value}})
            version = frame["version"]
        else:
            continue
        assert_no_leak(frame, viewer, hands=rule is HANDS)
        assert normalized(state) == normalized(rule.view_of(states[version], viewer)), (
            viewer, version)
    return version


def assert_no_leak(frame: dict[str, Any], viewer: str | None, *, hands: bool) -> None:
    """No other player's private field (set or deleted), nor (``hands``) another
    player's hand, anywhere in the frame."""
    payload = frame["payload"]
    doc = payload.get("state") if frame["type"] == "FULL_STATE" else payload
    if frame["type"] == "PLAYER_JOINED":
        doc = {"players": {payload["playerId"]: payload["state"]}}
    players = (doc or {}).get("players") or {}
    for player_id, obj in players.items():
        if player_id != viewer and type(obj) is dict:
            assert not [k for k in obj if k.startswith("_")], (viewer, frame)
    for entity_id in (doc or {}).get("entities") or {} if hands else ():
        assert not entity_id.startswith("hand-") or entity_id == f"hand-{viewer}", (viewer, frame)


def normalized(state: dict[str, Any]) -> dict[str, Any]:
    return {"players": state.get("players", {}), "entities": state.get("entities", {})}


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


# -- the pure functions ------------------------------------------------------------


def test_a_patch_without_private_fields_has_no_audience_and_is_not_copied():
    patch = {"players": {"p1": {"x": 1, "y": 2}}, "entities": {"e": {"_v": 1}}}
    assert private_owners(patch) is None
    assert without_private(patch, None) is patch
    assert view_patch(FREEFORM, patch, "p2") is patch


def test_other_players_private_fields_are_left_out_and_emptied_entries_pruned():
    patch = {"players": {"p1": {"_s": 1}, "p2": {"x": 1, "_t": None}}}
    assert private_owners(patch) == {"p1", "p2"}
    assert view_patch(FREEFORM, patch, "p1") == {"players": {"p1": {"_s": 1}, "p2": {"x": 1}}}
    assert view_patch(FREEFORM, patch, "p2") == {"players": {"p2": {"x": 1, "_t": None}}}
    assert view_patch(FREEFORM, {"players": {"p1": {"_s": 1}}}, None) == {}
    assert patch == {"players": {"p1": {"_s": 1}, "p2": {"x": 1, "_t": None}}}  # not mutated


def test_the_public_state_has_no_private_fields_and_no_server_data():
    state = {"players": {"p1": {"n": "A", "_s": 1}}, "entities": {"hand-p1": {"c": [1]}},
             "server": {"coinTimer": 3}, "epoch": "e-1"}
    assert public_state(FREEFORM, state) == {
        "players": {"p1": {"n": "A"}}, "entities": {"hand-p1": {"c": [1]}}}
    assert public_state(HANDS, state) == {"players": {"p1": {"n": "A"}}, "entities": {}}


def test_a_private_only_change_folds_into_the_next_frame():
    room = Room("r", FREEFORM, Limits())
    changes = [room.join("p1", {"n": 1}, now=0), room.join("p2", {"n": 2}, now=0)]
    changes.append(room.update_player("p1", {"_s": "secret"}, now=0))  # 2 -> 3
    items = [Pending.of(c) for c in changes]
    frames, sent, seen = member_frames("r", items[2:], sent=2, seen=2, viewer="p2",
                                       rule=FREEFORM, timestamp=0)
    assert (frames, sent, seen) == ([], 2, 3)  # nothing by itself; version 3 waits
    own, _, _ = member_frames("r", items[2:], sent=2, seen=2, viewer="p1", rule=FREEFORM,
                              timestamp=0)
    assert own[0]["payload"] == {"players": {"p1": {"_s": "secret"}}}
    # a join after it: a DELTA covering the folded version first, then PLAYER_JOINED 3 -> 4
    joined = Pending.of(room.join("p3", {"n": 3, "_k": 1}, now=0), FREEFORM)
    frames, sent, seen = member_frames("r", [joined], sent=sent, seen=seen, viewer="p2",
                                       rule=FREEFORM, timestamp=0)
    assert [(f["type"], f["baseVersion"], f["version"], f["payload"]) for f in frames] == [
        ("DELTA_UPDATE", 2, 3, {}),
        ("PLAYER_JOINED", 3, 4, {"playerId": "p3", "state": {"n": 3}}),
    ]
    assert (sent, seen) == (4, 4)
    # the next visible change carries folded versions: baseVersion is the last frame's
    hidden = Pending.of(room.update_player("p1", {"_s": None}, now=0))
    shown = Pending.of(room.update_player("p1", {"x": 5}, now=0))
    frames, sent, seen = member_frames("r", [hidden, shown], sent=4, seen=4, viewer="p2",
                                       rule=FREEFORM, timestamp=0)
    assert [(f["baseVersion"], f["version"], f["payload"]) for f in frames] == [
        (4, 6, {"players": {"p1": {"x": 5}}})]
    # hold=False sends what is folded at once, as {}
    last = Pending.of(room.update_player("p1", {"_s": 2}, now=0))
    frames, sent, seen = member_frames("r", [last], sent=6, seen=6, viewer=None,
                                       rule=FREEFORM, timestamp=0, hold=False)
    assert [(f["baseVersion"], f["version"], f["payload"]) for f in frames] == [(6, 7, {})]


views_ops = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(0, 3), st.booleans()),
        st.tuples(st.just("set"), st.integers(0, 3), st.sampled_from(["x", "_s", "_t"]),
                  st.integers(0, 2)),
        st.tuples(st.just("both"), st.integers(0, 3), st.integers(0, 2)),
        st.tuples(st.just("hand"), st.integers(0, 3), st.integers(0, 2)),
        st.tuples(st.just("entity"), st.integers(0, 2)),
        st.tuples(st.just("leave"), st.integers(0, 3)),
        st.tuples(st.just("reset")),
    ),
    min_size=5,
    max_size=40,
)


def run_room(rule: RoomType, ops) -> tuple[Room, list, dict[int, dict[str, Any]]]:
    """Apply ``ops`` to a room; its changes and its state at every version."""
    room = Room("r", rule, Limits())
    changes, states = [], {0: room.snapshot()}

    def applied(change):
        if change is not None:
            changes.append(change)
            states[change.version] = room.snapshot()

    for op in ops:
        player_id = f"p{op[1]}" if len(op) > 1 else None
        if op[0] == "join" and not room.has_player(player_id):
            applied(room.join(player_id, {"n": op[1], "_k": op[1]} if op[2] else {"n": op[1]},
                              now=0))
        elif op[0] == "set" and room.has_player(player_id):
            applied(room.update_player(player_id, {op[2]: op[3] or None}, now=0))
        elif op[0] == "both" and room.has_player(player_id):
            applied(room.update_player(player_id, {"x": op[2], "_s": -op[2] or None}, now=0))
        elif op[0] == "hand":
            applied(room.update_entity(f"hand-{player_id}", {"c": op[2] or None}, player_id=None))
        elif op[0] == "entity":
            applied(room.update_entity("table", {"v": op[1] or None}, player_id=None))
        elif op[0] == "leave" and room.has_player(player_id):
            applied(room.leave(player_id, LeaveReason.LEFT))
        elif op[0] == "reset":
            applied(room.reset({"entities": {"table": {"v": 9}}}))
    return room, changes, states


@settings(max_examples=200, deadline=None)
@given(views_ops, st.sampled_from(["freeform", "hands"]), st.data())
def test_member_frames_rebuild_each_view_at_every_version(ops, rule_name, data):
    rule = FREEFORM if rule_name == "freeform" else HANDS
    ops = [("join", 0, False), ("join", 1, True), ("join", 2, False), *ops]
    _room, changes, states = run_room(rule, ops)
    last = changes[-1].version if changes else 0
    for viewer in ("p0", "p1", "p2", None):
        # the member gets a FULL_STATE at some version, then the rest cut into ticks
        start = data.draw(st.integers(0, last))
        frames = [{"type": "FULL_STATE", "version": start,
                   "payload": {"state": rule.view_of(states[start], viewer)}}]
        items = [Pending.of(c, rule) for c in changes if c.version > start]
        sent = seen = start
        while items:
            cut = data.draw(st.integers(1, len(items)))
            batch, items = items[:cut], items[cut:]
            more, sent, seen = member_frames(
                "r", batch, sent=sent, seen=seen, viewer=viewer, rule=rule, timestamp=0,
                hold=data.draw(st.booleans()))
            frames += more
        assert seen == last
        reached = replay_views(frames, viewer, states, rule, held=False)
        assert reached == sent
        # what is still folded is invisible: its view at the last version is the same
        assert normalized(rule.view_of(states[reached], viewer)) == normalized(
            rule.view_of(states[last], viewer))


# -- through the hub ---------------------------------------------------------------


hub_ops = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.booleans(), st.booleans()),
        st.tuples(st.just("set"), st.integers(0, 5), st.sampled_from(["x", "_s"]),
                  st.integers(0, 2)),
        st.tuples(st.just("hand"), st.integers(0, 5), st.integers(0, 2)),
        st.tuples(st.just("entity"), st.integers(0, 2)),
        st.tuples(st.just("leave"), st.integers(0, 5)),
        st.tuples(st.just("flush")),
        st.tuples(st.just("slow"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("resync"), st.integers(0, 5)),
        st.tuples(st.just("recover"), st.integers(0, 5), st.integers(0, 30)),
    ),
    min_size=10,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(hub_ops, st.sampled_from(["freeform", "hands"]))
def test_through_the_hub_every_member_holds_its_view_and_a_gapless_chain(ops, rule_name):
    rule = FREEFORM if rule_name == "freeform" else HANDS
    ops = [("join", True, False), ("join", True, True), ("join", False, False), *ops]
    with hand_driven(rule) as (_hub, room, fanout):
        members: list[Member] = []
        changes: list = []
        states = {0: room.snapshot()}

        def publish(change):
            if change is not None:
                changes.append(change)
                states[change.version] = room.snapshot()
                fanout.publish(change)

        def pick(n: int) -> Member | None:
            return members[n % len(members)] if members else None

        for op in ops:
            kind = op[0]
            if kind == "join":
                player_id = f"p{len(members)}" if op[1] else None
                member = Member(player_id, MSGPACK if len(members) % 3 == 2 else JSON)
                if player_id:
                    fields = {"n": len(members), "_k": 1} if op[2] else {"n": len(members)}
                    publish(room.join(player_id, fields, now=0))
                fanout.attach(member)
                fanout.send_full_state(member, resumed=False)
                members.append(member)
            elif kind in ("set", "hand", "leave"):
                member = pick(op[1])
                if member is None or not member.player_id or not room.has_player(member.player_id):
                    continue
                if kind == "set":
                    publish(room.update_player(member.player_id, {op[2]: op[3] or None}, now=0))
                elif kind == "hand":
                    publish(room.update_entity(f"hand-{member.player_id}", {"c": op[2] or None},
                                               player_id=None))
                else:
                    publish(room.leave(member.player_id, LeaveReason.TIMEOUT))
            elif kind == "entity":
                publish(room.update_entity("table", {"v": op[1] or None}, player_id=None))
            elif kind == "flush":
                fanout.flush()
            elif kind == "slow" and members:
                pick(op[1]).writer.pending = LAG_HIGH + 1 if op[2] else 0
            elif kind == "resync" and members:
                fanout.send_full_state(pick(op[1]), resumed=False)
            elif kind == "recover" and members:
                # a second connection of a member comes back at an earlier version and
                # gets the changes since from the log (the recovery path, §14)
                old = pick(op[1])
                if old.player_id and not room.has_player(old.player_id):
                    continue
                since = min(op[2], room.version)
                member = Member(old.player_id)
                member.writer.frames.append({"type": "FULL_STATE", "version": since, "payload": {
                    "state": rule.view_of(states[since], member.player_id)}})
                member.synced_version = since
                fanout.attach(member)
                fanout.send_changes(member, changes)
                members.append(member)
        for member in members:
            member.writer.pending = 0
        fanout.flush()
        fanout.flush()  # a lagging member catches up on the tick after it drained
        for member in members:
            reached = replay_views(member.writer.frames, member.player_id, states, rule)
            assert reached <= room.version
            assert member.synced_version == room.version
            viewer = member.player_id
            assert normalized(rule.view_of(states[reached], viewer)) == normalized(
                rule.view_of(room.snapshot(), viewer))


def test_a_tick_is_encoded_once_per_view_and_others_share_one_frame():
    with hand_driven(FREEFORM) as (hub, room, fanout):
        for player_id in ("p1", "p2", "p3"):
            room.join(player_id, {}, now=0)
        members = {pid: Member(pid) for pid in ("p1", "p2", "p3", None)}
        for member in members.values():
            fanout.attach(member)
            fanout.send_full_state(member, resumed=False)
        sent: dict[str | None, bytes] = {}
        original = hub.write
        hub.write = lambda m, data: (sent.__setitem__(m.player_id, data), original(m, data))
        fanout.publish(room.update_player("p1", {"x": 1, "_s": "secret"}, now=0))
        fanout.publish(room.update_player("p2", {"x": 2}, now=0))
        fanout.flush()
        assert members["p1"].writer.frames[-1]["payload"] == {
            "players": {"p1": {"x": 1, "_s": "secret"}, "p2": {"x": 2}}}
        for other in ("p2", "p3", None):
            assert members[other].writer.frames[-1]["payload"] == {
                "players": {"p1": {"x": 1}, "p2": {"x": 2}}}
        assert sent["p2"] is sent["p3"] is sent[None]  # one encoding for everyone else
        assert sent["p1"] is not sent["p2"]  # two encodings in all


def test_a_private_only_change_sends_nothing_to_the_others_until_their_next_frame():
    with hand_driven(FREEFORM) as (_hub, room, fanout):
        room.join("p1", {}, now=0)
        room.join("p2", {}, now=0)
        a, b, watcher = Member("p1"), Member("p2"), Member(None)
        for member in (a, b, watcher):
            fanout.attach(member)
            fanout.send_full_state(member, resumed=False)
        fanout.publish(room.update_player("p1", {"_s": "secret"}, now=0))  # 2 -> 3
        fanout.flush()
        assert a.writer.frames[-1]["payload"] == {"players": {"p1": {"_s": "secret"}}}
        assert len(b.writer.frames) == len(watcher.writer.frames) == 1  # FULL_STATE only
        assert b.synced_version == 3 and fanout.unsent[id(b)] == 2
        fanout.publish(room.join("p3", {"_k": 1, "n": 3}, now=0))  # 3 -> 4
        fanout.flush()
        for member in (b, watcher):
            delta, joined = member.writer.frames[-2:]
            assert (delta["type"], delta["baseVersion"], delta["version"], delta["payload"]) == (
                "DELTA_UPDATE", 2, 3, {})
            assert (joined["type"], joined["baseVersion"], joined["version"]) == (
                "PLAYER_JOINED", 3, 4)
            assert joined["payload"]["state"] == {"n": 3}
        assert id(b) not in fanout.unsent
        # a spectator's FULL_STATE has nobody's private fields, a player's has its own
        fanout.send_full_state(watcher, resumed=False)
        fanout.send_full_state(a, resumed=False)
        assert watcher.writer.frames[-1]["payload"]["state"]["players"] == {
            "p1": {}, "p2": {}, "p3": {"n": 3}}
        assert a.writer.frames[-1]["payload"]["state"]["players"]["p1"] == {"_s": "secret"}


def test_versions_held_back_are_folded_into_a_tick_of_one_view():
    # the hub shares one lookup of a one-view tick's frames among the members in step,
    # but not with a member whose earlier versions wait (it starts from further back)
    with hand_driven(FREEFORM) as (_hub, room, fanout):
        room.join("p1", {}, now=0)
        room.join("p2", {}, now=0)
        a, b, c = Member("p1"), Member("p2"), Member(None, MSGPACK)
        for member in (a, b, c):
            fanout.attach(member)
            fanout.send_full_state(member, resumed=False)
        fanout.publish(room.update_player("p1", {"_s": "secret"}, now=0))  # 2 -> 3
        fanout.flush()
        assert fanout.unsent == {id(b): 2, id(c): 2}
        fanout.publish(room.update_player("p2", {"x": 7}, now=0))  # 3 -> 4: no audience
        fanout.flush()
        a_frame, b_frame, c_frame = (m.writer.frames[-1] for m in (a, b, c))
        assert (a_frame["baseVersion"], a_frame["version"]) == (3, 4)
        for frame in (b_frame, c_frame):
            assert (frame["baseVersion"], frame["version"]) == (2, 4)
            assert frame["payload"] == {"players": {"p2": {"x": 7}}}
        assert not fanout.unsent
        fanout.publish(room.update_player("p1", {"x": 1}, now=0))  # 4 -> 5: all in step
        fanout.flush()
        for member in (a, b, c):
            assert member.synced_version == 5
            frame = member.writer.frames[-1]
            assert (frame["baseVersion"], frame["version"], frame["payload"]) == (
                4, 5, {"players": {"p1": {"x": 1}}})


def test_a_room_without_private_fields_keeps_its_frames():
    with hand_driven(FREEFORM) as (_hub, room, fanout):
        room.join("p1", {}, now=0)
        member = Member(None)
        fanout.attach(member)
        fanout.send_full_state(member, resumed=False)
        change = room.update_player("p1", {"x": 1}, now=0)
        fanout.publish(change)
        assert fanout.items[-1].audience is None
        fanout.flush()
        frame = member.writer.frames[-1]
        assert frame["type"] == ChangeKind.DELTA.value
        assert frame["payload"] is not None and frame["payload"] == change.patch
