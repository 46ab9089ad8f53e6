"""Pure tests of the Python client's I/O-free core: merge patch, mirror and chain, parsing.

No server and no sockets: these modules take values and return values, so the
ordering rules of PROTOCOL.md §6 are checked here in microseconds.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kasagi_client import (
    Backoff,
    ChainOutcome,
    Delta,
    Error,
    Forbidden,
    FullState,
    InternalError,
    KasagiError,
    PlayerJoined,
    PlayerLeft,
    Pong,
    RateLimited,
    StateMirror,
    VersionConflict,
    apply_merge_patch,
    error_from_payload,
)
from kasagi_client.events import MalformedMessage, parse_server_message
from kasagi_client.merge_patch import is_noop
from kasagi_client.wire import decode, encode, envelope

# --- RFC 7396 -----------------------------------------------------------------------------------

# Appendix A of RFC 7396, every row: (original, patch, result).
RFC7396_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "patch", "expected"), RFC7396_EXAMPLES)
def test_merge_patch_rfc7396_appendix_a(original: Any, patch: Any, expected: Any) -> None:
    assert apply_merge_patch(original, patch) == expected


def test_merge_patch_rfc7396_section_3_example() -> None:
    original = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert apply_merge_patch(original, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_merge_patch_never_mutates_its_inputs_and_shares_untouched_parts() -> None:
    target = {"players": {"a": {"x": 1}, "b": {"x": 2}}, "entities": {"d": {"t": "hi"}}}
    patch = {"players": {"a": {"x": 5, "gone": None}}}
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)

    result = apply_merge_patch(target, patch)

    assert target == target_before
    assert patch == patch_before
    assert result["players"]["a"] == {"x": 5}
    # Copy-on-write: the untouched subtrees are the very same objects.
    assert result["entities"] is target["entities"]
    assert result["players"]["b"] is target["players"]["b"]


def test_is_noop_matches_the_servers_definition() -> None:
    player = {"x": 1, "nested": {"k": "v"}}
    assert is_noop(player, {"x": 1})
    assert is_noop(player, {"nested": {"k": "v"}, "absent": None})
    assert not is_noop(player, {"x": 2})
    assert not is_noop(player, {"x": None})
    assert not is_noop(player, {"nested": {"other": 1}})


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


@given(json_objects, json_objects)
def test_merge_patch_is_idempotent(target: dict[str, Any], patch: dict[str, Any]) -> None:
    once = apply_merge_patch(target, patch)
    assert apply_merge_patch(once, patch) == once
    assert is_noop(once, patch)


# --- mirror and version chain (PROTOCOL.md §6) ----------------------------------------------------


def full_state(version: int, state: dict[str, Any] | None = None, room: str = "r") -> FullState:
    return FullState(
        room_id=room,
        version=version,
        player_id="p-1",
        state=state if state is not None else {"players": {"p-1": {"x": 0}}, "entities": {}},
        session_token="secret",
    )


def delta(base: int, version: int, patch: dict[str, Any], room: str = "r") -> Delta:
    return Delta(room_id=room, version=version, base_version=base, patch=patch)


def test_mirror_applies_a_gapless_chain() -> None:
    mirror = StateMirror()
    mirror.load(full_state(10))

    assert mirror.apply(delta(10, 11, {"players": {"p-1": {"x": 5}}})) is ChainOutcome.APPLIED
    joined = PlayerJoined(room_id="r", version=12, base_version=11, player_id="p-2",
                          state={"playerName": "B"})
    assert mirror.apply(joined) is ChainOutcome.APPLIED
    assert mirror.apply(delta(12, 13, {"entities": {"door": {"open": True}}})) is (
        ChainOutcome.APPLIED
    )
    left = PlayerLeft(room_id="r", version=14, base_version=13, player_id="p-2", reason="left")
    assert mirror.apply(left) is ChainOutcome.APPLIED

    assert mirror.version == 14
    assert mirror.state == {"players": {"p-1": {"x": 5}}, "entities": {"door": {"open": True}}}
    assert mirror.own_player() == {"x": 5}
    assert mirror.entity("door") == {"open": True}


def test_mirror_accepts_a_delta_that_merges_several_versions() -> None:
    mirror = StateMirror()
    mirror.load(full_state(10))
    assert mirror.apply(delta(10, 13, {"players": {"p-1": {"x": 9}}})) is ChainOutcome.APPLIED
    assert mirror.version == 13
    assert mirror.apply(delta(13, 14, {"players": {"p-1": {"y": 1}}})) is ChainOutcome.APPLIED
    assert mirror.own_player() == {"x": 9, "y": 1}


def test_mirror_detects_a_gap_and_drops_everything_until_the_next_full_state() -> None:
    mirror = StateMirror()
    mirror.load(full_state(10))

    assert mirror.apply(delta(11, 12, {"players": {"p-1": {"x": 1}}})) is ChainOutcome.GAP
    assert not mirror.in_sync
    # The next message continues the server's chain but not ours: dropped, no second gap.
    assert mirror.apply(delta(12, 13, {"players": {"p-1": {"x": 2}}})) is (
        ChainOutcome.OUT_OF_SYNC
    )
    assert mirror.version == 10
    assert mirror.own_player() == {"x": 0}

    mirror.load(full_state(13, {"players": {"p-1": {"x": 2}}, "entities": {}}))
    assert mirror.in_sync
    assert mirror.apply(delta(13, 14, {"players": {"p-1": {"x": 3}}})) is ChainOutcome.APPLIED
    assert mirror.own_player() == {"x": 3}


def test_mirror_treats_an_overlapping_message_as_a_gap() -> None:
    mirror = StateMirror()
    mirror.load(full_state(10))
    # base 9 -> 11 spans our version 10: it cannot be applied exactly.
    assert mirror.apply(delta(9, 11, {"players": {"p-1": {"x": 1}}})) is ChainOutcome.GAP


def test_mirror_ignores_stale_duplicates() -> None:
    mirror = StateMirror()
    mirror.load(full_state(10))
    first = delta(10, 11, {"players": {"p-1": {"x": 5}}})
    assert mirror.apply(first) is ChainOutcome.APPLIED
    state_after = mirror.state

    assert mirror.apply(first) is ChainOutcome.STALE
    assert mirror.apply(delta(9, 10, {"players": {"p-1": {"x": 99}}})) is ChainOutcome.STALE
    assert mirror.version == 11
    assert mirror.state is state_after
    assert mirror.in_sync  # a duplicate is not a gap


def test_stale_messages_before_a_resync_answer_are_ignored() -> None:
    # The RESYNC's FULL_STATE can be newer than messages still in flight.
    mirror = StateMirror()
    mirror.load(full_state(20))
    assert mirror.apply(delta(18, 19, {"players": {"p-1": {"x": 1}}})) is ChainOutcome.STALE
    assert mirror.apply(delta(19, 20, {"players": {"p-1": {"x": 1}}})) is ChainOutcome.STALE
    assert mirror.apply(delta(20, 21, {"players": {"p-1": {"x": 1}}})) is ChainOutcome.APPLIED


def test_mirror_ignores_messages_before_a_full_state_or_about_another_room() -> None:
    mirror = StateMirror()
    assert mirror.apply(delta(0, 1, {"players": {}})) is ChainOutcome.OTHER_ROOM
    mirror.load(full_state(5))
    assert mirror.apply(delta(5, 6, {"x": 1}, room="elsewhere")) is ChainOutcome.OTHER_ROOM
    assert mirror.version == 5


def test_full_state_replaces_the_mirror_whatever_its_version() -> None:
    mirror = StateMirror()
    mirror.load(full_state(50))
    older = full_state(7, {"players": {}, "entities": {"e": {"k": 1}}})
    mirror.load(older)
    assert mirror.version == 7
    assert mirror.state == {"players": {}, "entities": {"e": {"k": 1}}}


def test_snapshots_handed_out_stay_unchanged_after_later_patches() -> None:
    snapshot = full_state(1)
    mirror = StateMirror()
    mirror.load(snapshot)
    mirror.apply(delta(1, 2, {"players": {"p-1": {"x": 42}}}))
    assert snapshot.state == {"players": {"p-1": {"x": 0}}, "entities": {}}
    assert mirror.own_player() == {"x": 42}


def test_mirror_reflects_tells_whether_a_write_is_visible() -> None:
    mirror = StateMirror()
    assert not mirror.reflects({"x": 0})
    mirror.load(full_state(1, {"players": {"p-1": {"x": 0}}, "entities": {"d": {"t": "a"}}}))
    assert mirror.reflects({"x": 0})
    assert not mirror.reflects({"x": 1})
    assert mirror.reflects({"t": "a"}, entity_id="d")
    assert mirror.reflects({"t": None}, entity_id="missing")  # emptied entity = deleted
    assert not mirror.reflects({"t": "b"}, entity_id="missing")

    spectator = StateMirror()
    spectator.load(FullState(room_id="r", version=1, player_id=None, state={"players": {}}))
    assert not spectator.reflects({"x": 0})
    assert spectator.own_player() is None


# --- parsing server messages (PROTOCOL.md §5) ---------------------------------------------------


def test_parse_full_state_keeps_the_token_out_of_repr() -> None:
    event = parse_server_message({
        "type": "FULL_STATE", "roomId": "game-lobby-1", "version": 42, "timestamp": 1,
        "requestId": "py-1",
        "payload": {"playerId": "p-6f1c", "sessionToken": "opaque-secret", "resumed": False,
                    "state": {"players": {"p-6f1c": {"playerName": "Player1"}}, "entities": {}}},
    })
    assert isinstance(event, FullState)
    assert (event.room_id, event.version, event.player_id) == ("game-lobby-1", 42, "p-6f1c")
    assert event.request_id == "py-1"
    assert event.session_token == "opaque-secret"
    assert "opaque-secret" not in repr(event)


def test_parse_state_changing_messages() -> None:
    d = parse_server_message({"type": "DELTA_UPDATE", "roomId": "r", "version": 42,
                              "baseVersion": 41, "payload": {"players": {"p": {"x": 150}}}})
    assert d == Delta(room_id="r", version=42, base_version=41,
                      patch={"players": {"p": {"x": 150}}})
    j = parse_server_message({"type": "PLAYER_JOINED", "roomId": "r", "version": 43,
                              "baseVersion": 42,
                              "payload": {"playerId": "p-2", "state": {"playerName": "B"}}})
    assert j == PlayerJoined(room_id="r", version=43, base_version=42, player_id="p-2",
                             state={"playerName": "B"})
    left = parse_server_message({"type": "PLAYER_LEFT", "roomId": "r", "version": 44,
                                 "baseVersion": 43,
                                 "payload": {"playerId": "p-2", "reason": "timeout"}})
    assert left == PlayerLeft(room_id="r", version=44, base_version=43, player_id="p-2",
                              reason="timeout")


def test_parse_pong_and_error() -> None:
    pong = parse_server_message({"type": "PONG", "requestId": 7, "payload": {"serverTime": 99}})
    assert pong == Pong(server_time=99, request_id=7)
    err = parse_server_message({
        "type": "ERROR", "roomId": "r", "requestId": "c-17",
        "payload": {"code": "VERSION_CONFLICT", "message": "stale", "currentVersion": 12},
    })
    assert isinstance(err, Error)
    exc = err.exception()
    assert isinstance(exc, VersionConflict)
    assert (exc.code, exc.message, exc.current_version, exc.request_id) == (
        "VERSION_CONFLICT", "stale", 12, "c-17"
    )


@pytest.mark.parametrize(
    "msg",
    [
        {"type": "DELTA_UPDATE", "roomId": "r", "version": 2, "payload": {}},  # no baseVersion
        {"type": "DELTA_UPDATE", "roomId": "r", "version": True, "baseVersion": 1},
        {"type": "FULL_STATE", "roomId": "r", "version": 1, "payload": {"state": []}},
        {"type": "PLAYER_LEFT", "version": 2, "baseVersion": 1, "payload": {"playerId": "p"}},
        {"type": "PONG", "payload": "not an object"},
    ],
)
def test_parse_rejects_messages_that_break_the_contract(msg: dict[str, Any]) -> None:
    with pytest.raises(MalformedMessage):
        parse_server_message(msg)


def test_parse_ignores_unknown_types_for_forward_compatibility() -> None:
    assert parse_server_message({"type": "SOMETHING_NEW", "payload": {}}) is None


# --- errors (PROTOCOL.md §8) ------------------------------------------------------------------

ALL_CODES = [
    "BAD_JSON", "BAD_MESSAGE", "UNKNOWN_TYPE", "NOT_IN_ROOM", "ALREADY_IN_ROOM",
    "ROOM_NOT_FOUND", "ROOM_FULL", "ROOM_CLOSED", "FORBIDDEN", "INVALID_UPDATE",
    "VERSION_CONFLICT", "PAYLOAD_TOO_LARGE", "RATE_LIMITED", "INTERNAL", "UNKNOWN_MESSAGE",
]


def test_every_contract_error_code_has_its_own_exception_class() -> None:
    classes = {type(error_from_payload({"code": code, "message": "m"})) for code in ALL_CODES}
    assert len(classes) == len(ALL_CODES)
    assert KasagiError not in classes
    for code in ALL_CODES:
        exc = error_from_payload({"code": code, "message": "m"}, request_id="q", room_id="r")
        assert isinstance(exc, KasagiError)
        assert exc.code == code
        assert type(exc).code == code
        assert (exc.message, exc.request_id, exc.room_id) == ("m", "q", "r")


def test_specific_error_classes() -> None:
    assert isinstance(error_from_payload({"code": "FORBIDDEN"}), Forbidden)
    assert isinstance(error_from_payload({"code": "RATE_LIMITED"}), RateLimited)
    assert isinstance(error_from_payload({"code": "INTERNAL"}), InternalError)
    unknown = error_from_payload({"code": "SHINY_NEW", "message": "later", "extra": 1})
    assert type(unknown) is KasagiError
    assert unknown.code == "SHINY_NEW"
    assert unknown.payload["extra"] == 1
    assert str(unknown) == "SHINY_NEW: later"


# --- envelope and backoff -------------------------------------------------------------------------


def test_envelope_omits_unset_fields_and_round_trips() -> None:
    msg = envelope("STATE_UPDATE", room_id="r", payload={"x": 1}, request_id="py-3",
                   entityId=None, expectedVersion=4)
    assert msg == {"type": "STATE_UPDATE", "roomId": "r", "payload": {"x": 1},
                   "requestId": "py-3", "expectedVersion": 4}
    assert decode(encode(msg)) == msg
    assert envelope("PING") == {"type": "PING"}
    with pytest.raises(MalformedMessage):
        decode("[1, 2]")
    with pytest.raises(MalformedMessage):
        decode("{not json")


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    exact = Backoff(initial=0.5, factor=2.0, max_delay=4.0, jitter=0.0)
    assert [exact.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert exact.delay(10_000) == 4.0  # no float overflow on long outages


def test_backoff_jitter_stays_within_its_fraction() -> None:
    jittery = Backoff(initial=1.0, factor=2.0, max_delay=8.0, jitter=0.5)
    assert jittery.delay(3, rand=lambda: 0.0) == 4.0
    assert jittery.delay(3, rand=lambda: 1.0) == 2.0
    delays = {jittery.delay(3) for _ in range(50)}
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len(delays) > 1
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1.5)
