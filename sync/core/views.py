"""Views (PROTOCOL.md §13): the part of a room each member may see.

Room code and server code see the whole room; a member gets its *view*. The
room type decides it (docs/views.md), in two parts:

- ``RoomType.view_of``, **path-local**: whether a member sees a place in the
  document depends only on the place (and the member), never on values. Then
  filtering a merge patch is the same walk as filtering a state, and the two
  commute: ``view(apply(S, P)) == apply(view(S), view(P))``; the hub filters a
  tick's patches without looking at the state. The default is the
  private-field rule: a top-level field of a player object whose name starts
  with ``_`` is seen only by that player.
- ``RoomType.interest`` (:class:`Interest`, None for most types),
  **value-dependent**: each object has a place decided by its value (a grid
  cell, a team) and a member sees the objects near its own place. The hub
  keeps every object's place (:class:`InterestIndex`) and recomputes views in
  the tick that changes them (:func:`interest_frames`): objects come into view
  whole and leave with ``null``. The ``world`` room type uses a grid.

Cost: a change is looked at once when it reaches the hub (``audience``: the
players whose view of it differs from everyone else's, None for almost every
change); only changes with an audience are filtered, and members outside
every audience of a tick share one frame. A room without private fields
costs one scan of each patch's player keys, nothing more.

:func:`member_frames` is the one place that turns a list of changes into the
frames one member gets (live fan-out and recovery both use it): invisible
changes are folded into the member's next frame, so its chain stays gapless.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable
from typing import Any, Protocol

from .changes import Change, ChangeKind
from .frames import change_frame, delta_frame
from .merge_patch import NotComposable, apply_patch, compose

JSONObject = dict[str, Any]
#: A member's player id, or None for a spectator (and for "everyone else").
Viewer = str | None

PRIVATE_PREFIX = "_"
#: read once: an enum member looked up on its class costs ~0.2 µs (per item, per view)
_DELTA, _JOINED = ChangeKind.DELTA, ChangeKind.JOINED


class ViewRule(Protocol):
    """What the frames need of a room type (``sync.core.room_types.RoomType``)."""

    def view_audience(self, patch: JSONObject) -> frozenset[str] | None: ...
    def view_of(self, doc: JSONObject, viewer: Viewer) -> JSONObject: ...


class ViewItem(Protocol):
    """A change as the hub keeps it (``sync.hub.Pending``): a Change plus its audience."""

    kind: ChangeKind | None
    base_version: int
    version: int
    patch: JSONObject
    payload: JSONObject | None
    audience: frozenset[str] | None


class ChainBreak(RuntimeError):
    """A list of changes that does not continue a member's chain."""


# -- the private-field rule ------------------------------------------------------


def private_owners(patch: JSONObject) -> frozenset[str] | None:
    """The players whose object in ``patch`` (a change's patch or a state) has a
    private field; None when no player has one (the common case, checked cheaply)."""
    players = patch.get("players")
    if type(players) is not dict:
        return None
    owners: list[str] | None = None
    for player_id, obj in players.items():
        if type(obj) is dict:
            for key in obj:
                if "_" <= key < "`":  # key[:1] == PRIVATE_PREFIX ("`" follows "_"), no slice
                    if owners is None:
                        owners = []
                    owners.append(player_id)
                    break
    return frozenset(owners) if owners else None


def without_private(doc: JSONObject, viewer: Viewer) -> JSONObject:
    """``doc`` (a state or a patch) without the private fields of players other
    than ``viewer``; ``doc`` itself (not a copy) when nothing is hidden."""
    players = doc.get("players")
    if type(players) is not dict:
        return doc
    shown: dict[str, Any] | None = None
    for player_id, obj in players.items():
        if player_id == viewer or type(obj) is not dict:
            continue
        for key in obj:
            if key[:1] == PRIVATE_PREFIX:
                if shown is None:
                    shown = dict(players)
                shown[player_id] = {
                    k: v for k, v in obj.items() if k[:1] != PRIVATE_PREFIX}
                break
    if shown is None:
        return doc
    out = dict(doc)
    out["players"] = shown
    return out


def public_state(rule: ViewRule, state: JSONObject) -> JSONObject:
    """What anyone outside the room may be shown (REST ``/state/``): the view of a
    spectator, private fields always left out, and only ``players`` and ``entities``
    (a snapshot's server-only data never leaves)."""
    viewed = without_private(rule.view_of(state, None), None)
    return {"players": viewed.get("players") or {}, "entities": viewed.get("entities") or {}}


def public_state_of(room_type: str, state: JSONObject) -> JSONObject:
    """:func:`public_state` under the room type named ``room_type`` (the private-field
    rule alone when the site no longer has that type)."""
    from .room_types import RoomType, get_room_type  # room_types imports this module

    try:
        rule: ViewRule = get_room_type(room_type)
    except KeyError:
        rule = RoomType()
    return public_state(rule, state)


# -- one member's part of a change -------------------------------------------------


def audience_of(rule: ViewRule, change: Change) -> frozenset[str] | None:
    """Computed once per change when it reaches the hub (``Pending.audience``)."""
    return rule.view_audience(change.patch)


def union(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def view_patch(rule: ViewRule, patch: JSONObject, viewer: Viewer) -> JSONObject:
    """The member's part of a DELTA's patch; ``{}`` when it sees nothing of it.

    Filtering may leave empty objects behind. A DELTA never creates a player
    (joins are PLAYER_JOINED), so an emptied player entry is a no-op and is
    dropped, and so are emptied ``players``/``entities`` (always in the state).
    An emptied entity entry is kept: it may be the entity's creation.
    """
    viewed = rule.view_of(patch, viewer)
    if viewed is patch:
        return patch
    out = dict(viewed)
    players = out.get("players")
    if type(players) is dict:
        if any(type(v) is dict and not v for v in players.values()):
            players = {k: v for k, v in players.items() if not (type(v) is dict and not v)}
            out["players"] = players
        if not players:
            del out["players"]
    if out.get("entities") == {}:
        del out["entities"]
    return out


def view_payload(rule: ViewRule, item: ViewItem, viewer: Viewer) -> JSONObject | None:
    """The member's PLAYER_JOINED/LEFT payload; None when the player is not in its view."""
    payload = item.payload
    assert payload is not None
    player_id = payload["playerId"]
    players = rule.view_of(item.patch, viewer).get("players") or {}
    if player_id not in players:
        return None
    if item.kind is ChangeKind.JOINED:
        shown = players[player_id]
        if shown is not payload.get("state"):
            return {**payload, "state": shown}
    return payload


def member_frames(
    room_id: str,
    items: Iterable[ViewItem],
    *,
    sent: int,
    seen: int,
    viewer: Viewer,
    rule: ViewRule,
    timestamp: int,
    hold: bool = True,
) -> tuple[list[JSONObject], int, int]:
    """The frames one member gets for ``items``, and its new ``(sent, seen)``.

    ``seen`` is the version the member's view is accounted through (its state is
    its view at ``seen``); ``sent`` is the version of the last frame it was sent,
    the next frame's ``baseVersion`` (``sent < seen``: folded versions waiting).
    Items at or below ``seen`` are skipped; the next must start at ``seen``.

    Consecutive DELTAs are composed into one DELTA_UPDATE. A DELTA the member
    cannot see adds its versions to the next frame; a PLAYER_JOINED/LEFT keeps
    ``version = baseVersion + 1``, so folded versions before it go out first as
    a DELTA (payload ``{}`` if nothing visible). Versions folded at the end are
    held for the member's next frame (``hold``), or sent as ``{}`` (not ``hold``).
    """
    frames: list[JSONObject] = []
    run: JSONObject | None = None  # the composed view of the DELTAs after `sent`
    for item in items:
        kind = item.kind
        if kind is None or item.version <= seen:
            continue
        if item.base_version != seen:
            raise ChainBreak(
                f"chain break in {room_id}: member at {seen}, "
                f"next change {item.base_version}->{item.version}")
        if kind is _DELTA:
            patch = item.patch if item.audience is None else view_patch(rule, item.patch, viewer)
            if run is None or not run:
                run = patch
            elif patch:
                try:
                    run = compose(run, patch)
                except NotComposable:
                    frames.append(delta_frame(room_id, sent, seen, run, timestamp))
                    sent, run = seen, patch
            seen = item.version
            continue
        payload = item.payload if item.audience is None else view_payload(rule, item, viewer)
        if payload is None:  # not in this member's view: folded like an invisible DELTA
            seen = item.version
            continue
        if seen > sent:
            frames.append(delta_frame(room_id, sent, seen, run or {}, timestamp))
        frames.append(change_frame(
            room_id, Change(kind, item.base_version, item.version, item.patch, payload),
            timestamp))
        sent = seen = item.version
        run = None
    if run or (seen > sent and not hold):
        frames.append(delta_frame(room_id, sent, seen, run or {}, timestamp))
        sent = seen
    return frames, sent, seen


# -- value-dependent views: interest (places) ---------------------------------------


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: The place of a viewer that is a spectator, or a member whose player is not in the
#: room (it is about to get a FULL_STATE): :meth:`Interest.near` decides what it sees.
SPECTATOR: Any = _Sentinel("SPECTATOR")
#: The "place" of an object that is not in the state.
ABSENT: Any = _Sentinel("ABSENT")

Place = Hashable
#: (section, id): ("players", player id) or ("entities", entity id)
Key = tuple[str, str]
SECTIONS = ("players", "entities")


class Interest:
    """A value-dependent view (§13, docs/views.md): every player and entity has a
    *place* decided by its own value (a grid cell from ``x``/``y``, a team), and a
    viewer at a place sees the objects whose places are :meth:`near` it.

    The rules: an object's place is a function of that object alone (``None``: it is
    seen by everyone); a member's own place is the place of its player object
    (:data:`SPECTATOR` for spectators), and ``at in near(at)`` for every place ``at``
    (a member always sees itself). Objects are seen whole or not at all; fields are
    hidden by the room type's path-local ``view_of`` (private ``_`` fields) on top.

    The hub keeps each room's places (:class:`InterestIndex`) and recomputes them as
    changes arrive, so a view never goes stale: an object moving out of view is
    removed with ``null``, one coming into view (or into a view that moved) arrives
    whole, in the same tick. Members at the same place share their frames.
    """

    #: The object fields a place depends on: a patch touching none of them keeps the
    #: object's place (not recomputed). Empty: every patch recomputes it.
    fields: frozenset[str] = frozenset()

    def place(self, section: str, key: str, obj: Any) -> Place | None:
        """The place of the object ``obj`` (a player's or an entity's whole value)."""
        return None

    def near(self, at: Place | None) -> Collection[Place] | None:
        """The places a viewer at ``at`` sees (objects at None are seen by all);
        None: it sees every place (a spectator)."""
        return None


#: the trajectory of a spectator (and of "everyone else")
_SPECTATING: tuple[Any, tuple[tuple[int, Any], ...]] = (SPECTATOR, ())


def _sees(place: Place | None, near: Collection[Place] | None) -> bool:
    return place is None or near is None or place in near


def viewer_place(interest: Interest, state: JSONObject, viewer: Viewer) -> Place | None:
    """Where ``viewer`` stands in ``state``: its player's place, or SPECTATOR."""
    if viewer is None:
        return SPECTATOR
    obj = (state.get("players") or {}).get(viewer)
    if obj is None:
        return SPECTATOR
    return interest.place("players", viewer, obj)


def view_state(rule: ViewRule, state: JSONObject, viewer: Viewer) -> JSONObject:
    """The member's view of a whole room state (its FULL_STATE): the room type's
    ``view_of`` and, in a room type with an :class:`Interest`, only the objects
    near the viewer. Every frame a member gets keeps it at exactly this."""
    doc = rule.view_of(state, viewer)
    interest = getattr(rule, "interest", None)
    if interest is None:
        return doc
    near = interest.near(viewer_place(interest, state, viewer))
    if near is None:
        return doc
    out = dict(doc)
    place = interest.place
    for section in SECTIONS:
        shown = doc.get(section)
        if not shown:
            continue
        full = state.get(section) or {}
        out[section] = {
            k: v for k, v in shown.items() if _sees(place(section, k, full.get(k, v)), near)}
    return out


class _Step:
    """One item of a batch as places see it."""

    __slots__ = ("kind", "moved", "moves", "stay")

    def __init__(self, kind: ChangeKind) -> None:
        self.kind = kind
        #: place → (players' parts, entities' parts) of objects that stayed there
        self.stay: dict[Place | None, tuple[JSONObject, JSONObject]] = {}
        #: objects whose place changed (created, deleted, moved): key, before, after,
        #: the patch's part, the object after
        self.moves: list[tuple[Key, Any, Any, Any, Any]] = []
        self.moved: set[Key] = set()


class InterestIndex:
    """The places of one room's objects at one version (``version``): what the hub
    keeps per room whose type has an :class:`Interest`. It holds the room's objects
    (never mutated: a change replaces them), the place of each and the objects at
    each place; :meth:`advance` moves it over a tick's changes."""

    __slots__ = ("at", "interest", "objects", "place_of", "version")

    def __init__(self, interest: Interest, version: int, state: JSONObject) -> None:
        self.interest = interest
        self.version = version
        self.objects: dict[Key, Any] = {}
        self.place_of: dict[Key, Place | None] = {}
        self.at: dict[Place, set[Key]] = {}
        for section in SECTIONS:
            for oid, obj in (state.get(section) or {}).items():
                key = (section, oid)
                self.objects[key] = obj
                self._put(key, interest.place(section, oid, obj))

    def _put(self, key: Key, place: Place | None) -> None:
        self.place_of[key] = place
        members = self.at.get(place)  # None too: the objects everyone sees
        if members is None:
            members = self.at[place] = set()
        members.add(key)

    def _drop(self, key: Key) -> None:
        place = self.place_of.pop(key, None)
        members = self.at.get(place)
        if members is not None:
            members.discard(key)
            if not members:
                del self.at[place]

    def view(self, rule: ViewRule, state: JSONObject, viewer: Viewer) -> JSONObject:
        """:func:`view_state` of ``state``, which must be the room at ``version``:
        the objects near the viewer are looked up by place, not scanned."""
        at = SPECTATOR if viewer is None else self.place_of.get(("players", viewer), SPECTATOR)
        near = self.interest.near(at)
        if near is None:
            return rule.view_of(state, viewer)
        doc = {k: v for k, v in state.items() if k not in SECTIONS}
        shown: tuple[JSONObject, JSONObject] = ({}, {})
        full = (state.get("players") or {}, state.get("entities") or {})
        for place in (None, *near):
            for section, oid in self.at.get(place, ()):
                target = 0 if section == "players" else 1
                shown[target][oid] = full[target][oid]
        doc["players"], doc["entities"] = shown
        return rule.view_of(doc, viewer)

    def advance(self, items: list[Any]) -> InterestBatch:
        """Apply ``items`` (a tick's changes, in order, starting at ``version``) and
        return what the frames of the tick need to know of places."""
        batch = InterestBatch(self)
        interest = self.interest
        fields, place = interest.fields, interest.place
        objects, place_of = self.objects, self.place_of
        # a tick's DELTAs are composed into one item (the hub's publish): then the room
        # after it is ``objects`` and no per-object timeline is needed
        timeline = batch.timeline if len(items) > 1 else None
        batch.timed = timeline is not None
        for k, item in enumerate(items):
            if item.base_version != self.version:
                raise ChainBreak(f"places at {self.version}, change {item.base_version}"
                                 f"->{item.version}")
            step = _Step(item.kind)
            batch.steps.append(step)
            stay = step.stay
            patch = item.patch
            for target, section in enumerate(SECTIONS):
                parts = patch.get(section)
                if type(parts) is not dict:
                    continue
                # per changed object of every tick: the loop is kept to plain lookups
                for oid, part in parts.items():
                    key = (section, oid)
                    old = objects.get(key)
                    if type(part) is dict:
                        new = apply_patch(old, part)
                        if old is None:
                            before = ABSENT
                            after = place(section, oid, new)
                        else:
                            before = place_of.get(key, ABSENT)
                            after = (before if fields and fields.isdisjoint(part)
                                     else place(section, oid, new))
                    elif part is None:
                        if old is None:
                            continue
                        new = None
                        before = place_of.get(key, ABSENT)
                        after = ABSENT
                    else:
                        new = part
                        before = ABSENT if old is None else place_of.get(key, ABSENT)
                        after = place(section, oid, new)
                    if timeline is not None:
                        line = timeline.get(key)
                        if line is None:
                            line = timeline[key] = [(-1, old)]
                        line.append((k, new))
                    if new is None:
                        del objects[key]
                    else:
                        objects[key] = new
                    if after == before and before is not ABSENT:
                        bucket = stay.get(before)
                        if bucket is None:
                            bucket = stay[before] = ({}, {})
                        bucket[target][oid] = part
                        continue
                    if before is not ABSENT:
                        self._drop(key)
                    if after is not ABSENT:
                        self._put(key, after)
                    step.moves.append((key, before, after, part, new))
                    step.moved.add(key)
                    batch.movelog.append((k, key, before, after))
                    moves = batch.moves_of.get(key)
                    if moves is None:
                        moves = batch.moves_of[key] = []
                        batch.first_place[key] = before
                    moves.append((k, after))
            self.version = item.version
        return batch


class InterestBatch:
    """A tick's changes as places see them (:meth:`InterestIndex.advance`): where
    every object was after each item, and each item's patch cut by place. It answers
    one view (a trajectory of the viewer's places) at a time: :func:`interest_frames`."""

    __slots__ = ("first_place", "index", "interest", "movelog", "moves_of", "place_of",
                 "steps", "timed", "timeline")

    def __init__(self, index: InterestIndex) -> None:
        self.index = index
        #: ``index.place_of`` (the same dict, moved by ``advance``), read once per member
        self.place_of = index.place_of
        self.interest = index.interest
        self.steps: list[_Step] = []
        #: key → [(-1, value before the tick), (item index, value after it), ...];
        #: kept only for a batch of several items (``timed``)
        self.timeline: dict[Key, list[tuple[int, Any]]] = {}
        self.timed = True
        #: (item index, key, place before, place after) of every object that moved
        self.movelog: list[tuple[int, Key, Any, Any]] = []
        self.moves_of: dict[Key, list[tuple[int, Any]]] = {}
        self.first_place: dict[Key, Any] = {}

    # -- the room at one item (k: after items[k]; -1: before the tick) ------------

    def obj_at(self, key: Key, k: int) -> Any:
        line = self.timeline.get(key)
        if line is None:
            assert self.timed or k == len(self.steps) - 1, "one item: the room after it only"
            return self.index.objects.get(key)
        value = line[0][1]
        for step, obj in line:
            if step > k:
                break
            value = obj
        return value

    def place_at(self, key: Key, k: int) -> Any:
        """The object's place after ``items[k]`` (ABSENT: not in the room)."""
        moves = self.moves_of.get(key)
        if moves is None:
            return self.index.place_of.get(key, ABSENT)
        place = self.first_place[key]
        for step, after in moves:
            if step > k:
                break
            place = after
        return place

    def keys_at(self, place: Place, k: int) -> set[Key]:
        """The objects at ``place`` after ``items[k]``."""
        keys = set(self.index.at.get(place, ()))
        for step, key, before, after in reversed(self.movelog):
            if step <= k:
                break
            if after == place:
                keys.discard(key)
            if before == place:
                keys.add(key)
        return keys

    def trajectory(self, viewer: Viewer, start: int) -> tuple[Any, tuple[tuple[int, Any], ...]]:
        """Where ``viewer`` stands before ``items[start]``, and each later item that
        moves it: what its frames of the tick depend on (members with the same
        trajectory, and the same private view, share them)."""
        if viewer is None:
            return _SPECTATING
        key = ("players", viewer)
        moves = self.moves_of.get(key)
        if moves is None:  # per member per tick: kept to two lookups
            place = self.place_of.get(key, ABSENT)
            return (SPECTATOR if place is ABSENT else place), ()
        at = self.place_at(key, start - 1)
        later = tuple((k, SPECTATOR if p is ABSENT else p) for k, p in moves if k >= start)
        return (SPECTATOR if at is ABSENT else at), later

    # -- one view of one item ------------------------------------------------------

    def delta_view(
        self, k: int, at_before: Any, at_after: Any, viewer: Viewer, rule: ViewRule,
        audience: frozenset[str] | None,
    ) -> JSONObject:
        """The DELTA patch of ``items[k]`` for a viewer moving from ``at_before`` to
        ``at_after`` (usually the same): the parts of objects it sees before and after,
        ``null`` for those leaving its view, whole objects for those coming into it."""
        step = self.steps[k]
        near = self.interest.near
        parts: tuple[JSONObject, JSONObject] = ({}, {})
        arrivals: tuple[JSONObject, JSONObject] = ({}, {})
        if at_before == at_after:
            near_before = near_after = near(at_before)
            if near_before is None:
                for players, entities in step.stay.values():
                    parts[0].update(players)
                    parts[1].update(entities)
            else:  # per view per tick: a bucket's other section is often empty
                stay = step.stay
                players, entities = parts
                for place in (None, *near_before):
                    bucket = stay.get(place)
                    if bucket is not None:
                        if bucket[0]:
                            players.update(bucket[0])
                        if bucket[1]:
                            entities.update(bucket[1])
        else:
            near_before, near_after = near(at_before), near(at_after)
            for place, (players, entities) in step.stay.items():
                if _sees(place, near_before) and _sees(place, near_after):
                    parts[0].update(players)
                    parts[1].update(entities)
            self._crossing(k, step, near_before, near_after, parts, arrivals)
        for key, before, after, part, new in step.moves:
            seen_before = before is not ABSENT and _sees(before, near_before)
            seen_after = after is not ABSENT and _sees(after, near_after)
            target = 0 if key[0] == "players" else 1
            if seen_before and seen_after:
                parts[target][key[1]] = part
            elif seen_after:
                arrivals[target][key[1]] = new
            elif seen_before:
                parts[target][key[1]] = None
        doc: JSONObject = {}
        for section, shown in zip(SECTIONS, parts, strict=True):
            if shown:
                doc[section] = shown
        if audience is not None and doc:
            doc = view_patch(rule, doc, viewer)
        if arrivals[0] or arrivals[1]:
            came = rule.view_of({"players": arrivals[0], "entities": arrivals[1]}, viewer)
            doc = dict(doc)
            for section in SECTIONS:
                objs = came.get(section)
                if objs:
                    doc[section] = {**doc.get(section, {}), **objs}
        return doc

    def _crossing(
        self, k: int, step: _Step, near_before: Collection[Place] | None,
        near_after: Collection[Place] | None,
        parts: tuple[JSONObject, JSONObject], arrivals: tuple[JSONObject, JSONObject],
    ) -> None:
        """The viewer itself moved at ``items[k]``: what it now sees or no longer sees
        of the objects that did not move (those are in ``step.moves``)."""
        came: list[Key] = []
        went: list[Key] = []
        if near_before is not None and near_after is not None:
            before, after = set(near_before), set(near_after)
            for place in after - before:
                came.extend(self.keys_at(place, k))
            for place in before - after:
                went.extend(self.keys_at(place, k))
        else:  # to or from "everything": look at every object (rare)
            for key in set(self.index.objects) | set(self.timeline):
                place = self.place_at(key, k)
                if place is ABSENT or place is None:
                    continue
                seen_before, seen_after = _sees(place, near_before), _sees(place, near_after)
                if seen_after and not seen_before:
                    came.append(key)
                elif seen_before and not seen_after:
                    went.append(key)
        moved = step.moved
        for key in came:
            if key not in moved:
                arrivals[0 if key[0] == "players" else 1][key[1]] = self.obj_at(key, k)
        for key in went:
            if key not in moved:
                parts[0 if key[0] == "players" else 1][key[1]] = None

    def sees(self, at: Any, place: Any) -> bool:
        return place is not ABSENT and _sees(place, self.interest.near(at))


def interest_frames(
    room_id: str,
    items: list[Any],
    start: int,
    batch: InterestBatch,
    *,
    sent: int,
    viewer: Viewer,
    trajectory: tuple[Any, tuple[tuple[int, Any], ...]],
    rule: ViewRule,
    timestamp: int,
    hold: bool = True,
) -> tuple[list[JSONObject], int, int, bool]:
    """:func:`member_frames` for a room with an :class:`Interest`: the frames one
    member gets for ``items[start:]`` (``batch`` is their :meth:`InterestIndex.advance`),
    given the member's ``trajectory`` (:meth:`InterestBatch.trajectory`) and its
    private view ``viewer`` (its id if the tick touches its private fields, else None).

    Returns ``(frames, sent, seen, resync)``; ``resync``: the member's own player
    joined or left in these items (its place came from or went to nowhere), so its
    frames stop there and it needs a FULL_STATE.
    """
    at, moving = trajectory
    moves = dict(moving)
    frames: list[JSONObject] = []
    run: JSONObject | None = None
    seen = items[start].base_version
    resync = False
    for k in range(start, len(items)):
        item = items[k]
        kind = item.kind
        if item.base_version != seen:
            raise ChainBreak(
                f"chain break in {room_id}: member at {seen}, "
                f"next change {item.base_version}->{item.version}")
        at_after = moves.get(k, at)
        if kind is _DELTA:
            patch = batch.delta_view(k, at, at_after, viewer, rule, item.audience)
            if run is None or not run:
                run = patch
            elif patch:
                try:
                    run = compose(run, patch)
                except NotComposable:
                    frames.append(delta_frame(room_id, sent, seen, run, timestamp))
                    sent, run = seen, patch
            seen = item.version
            at = at_after
            continue
        key = ("players", item.payload["playerId"])
        if kind is _JOINED:
            visible = batch.sees(at_after, batch.place_at(key, k))
        else:
            visible = batch.sees(at, batch.place_at(key, k - 1))
        payload = None
        if visible:
            payload = item.payload if item.audience is None else view_payload(rule, item, viewer)
        if payload is None:
            seen = item.version
        else:
            if seen > sent:
                frames.append(delta_frame(room_id, sent, seen, run or {}, timestamp))
            frames.append(change_frame(
                room_id, Change(kind, item.base_version, item.version, item.patch, payload),
                timestamp))
            sent = seen = item.version
            run = None
        at = at_after
        if k in moves:  # its own join or leave
            resync = True
            break
    if run or (seen > sent and (not hold or resync)):
        frames.append(delta_frame(room_id, sent, seen, run or {}, timestamp))
        sent = seen
    return frames, sent, seen, resync
