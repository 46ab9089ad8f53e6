"""Views (PROTOCOL.md §13): the part of a room each member may see.

Room code and server code see the whole room; a member gets its *view*. The
room type decides it (``RoomType.view_of``, docs/views.md); the default is
the private-field rule: a top-level field of a player object whose name
starts with ``_`` is seen only by that player.

A view is **path-local**: whether a member sees a place in the document
depends only on the place (and the member), never on values. Then filtering
a merge patch is the same walk as filtering a state, and the two commute:
``view(apply(S, P)) == apply(view(S), view(P))``. That is what lets the hub
filter a tick's patches without looking at the state.

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

from collections.abc import Iterable
from typing import Any, Protocol

from .changes import Change, ChangeKind
from .frames import change_frame, delta_frame
from .merge_patch import NotComposable, compose

JSONObject = dict[str, Any]
#: A member's player id, or None for a spectator (and for "everyone else").
Viewer = str | None

PRIVATE_PREFIX = "_"


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
                if key[:1] == PRIVATE_PREFIX:
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
        if kind is ChangeKind.DELTA:
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
