"""Envelope parsing: every shape of bad input maps to its §8 code; nothing else escapes."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.core.envelope import (
    JoinRoom,
    Ping,
    StateUpdate,
    parse_envelope,
    parse_message,
)
from sync.core.errors import ErrorCode, ProtocolError
from sync.core.limits import Limits

LIMITS = Limits()


def parse(message) -> object:
    raw = message if isinstance(message, (str, bytes)) else orjson.dumps(message)
    return parse_message(raw, LIMITS)


def refusal(message) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse(message)
    return info.value


def test_join_extracts_token_and_spectate_from_fields():
    msg = parse({
        "type": "JOIN_ROOM", "roomId": "r1", "requestId": 7,
        "payload": {"playerName": "A", "sessionToken": "tok", "spectate": False},
    })
    assert msg == JoinRoom("r1", {"playerName": "A"}, "tok", False, 7)


def test_update_with_entity_and_expected_version():
    msg = parse({
        "type": "STATE_UPDATE", "roomId": "r1", "entityId": "doc-1",
        "expectedVersion": 3, "version": 2, "payload": {"text": "hi"}, "extra": "ignored",
    })
    assert msg == StateUpdate("r1", {"text": "hi"}, "doc-1", 3, None)


def test_missing_payload_means_empty_object_and_ping_needs_no_room():
    assert parse({"type": "PING", "requestId": "p"}) == Ping(None, "p", {})


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", ErrorCode.BAD_JSON),
        ("[1, 2]", ErrorCode.BAD_JSON),
        ('"text"', ErrorCode.BAD_JSON),
        ({"roomId": "r"}, ErrorCode.BAD_MESSAGE),
        ({"type": 5, "roomId": "r"}, ErrorCode.BAD_MESSAGE),
        ({"type": "DANCE", "roomId": "r"}, ErrorCode.UNKNOWN_TYPE),
        ({"type": "FULL_STATE", "roomId": "r"}, ErrorCode.UNKNOWN_TYPE),
        ({"type": "JOIN_ROOM"}, ErrorCode.BAD_MESSAGE),
        ({"type": "JOIN_ROOM", "roomId": "bad room!"}, ErrorCode.BAD_MESSAGE),
        ({"type": "JOIN_ROOM", "roomId": "r" * 65}, ErrorCode.BAD_MESSAGE),
        ({"type": "JOIN_ROOM", "roomId": "r", "payload": []}, ErrorCode.BAD_MESSAGE),
        ({"type": "JOIN_ROOM", "roomId": "r", "payload": None}, ErrorCode.BAD_MESSAGE),
        ({"type": "JOIN_ROOM", "roomId": "r", "payload": {"spectate": "yes"}},
         ErrorCode.BAD_MESSAGE),
        ({"type": "STATE_UPDATE", "roomId": "r", "entityId": "a b"}, ErrorCode.BAD_MESSAGE),
        ({"type": "STATE_UPDATE", "roomId": "r", "expectedVersion": -1}, ErrorCode.BAD_MESSAGE),
        ({"type": "STATE_UPDATE", "roomId": "r", "expectedVersion": "3"}, ErrorCode.BAD_MESSAGE),
        ({"type": "STATE_UPDATE", "roomId": "r", "version": 1.5}, ErrorCode.BAD_MESSAGE),
        ({"type": "STATE_UPDATE", "roomId": "r", "payload": {"k" * 65: 1}},
         ErrorCode.PAYLOAD_TOO_LARGE),
        ({"type": "PING", "requestId": {"a": 1}}, ErrorCode.BAD_MESSAGE),
        ({"type": "PING", "requestId": "x" * 65}, ErrorCode.BAD_MESSAGE),
    ],
)
def test_bad_input_maps_to_its_code(frame, code):
    assert refusal(frame).code is code


def test_nesting_deeper_than_the_limit_is_too_large():
    payload: dict = {}
    node = payload
    for _ in range(LIMITS.max_depth):
        node["n"] = {}
        node = node["n"]
    assert refusal({"type": "STATE_UPDATE", "roomId": "r", "payload": payload}).code is (
        ErrorCode.PAYLOAD_TOO_LARGE
    )


def test_refusals_echo_a_valid_request_id_and_room():
    error = refusal({"type": "NOPE", "roomId": "r1", "requestId": "c-17"})
    assert (error.request_id, error.room_id) == ("c-17", "r1")
    error = refusal({"type": "JOIN_ROOM", "roomId": "bad room", "requestId": 4})
    assert (error.request_id, error.room_id) == (4, None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=3),
    max_leaves=10,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["JOIN_ROOM", "LEAVE_ROOM", "STATE_UPDATE", "RESYNC", "PING", "X"])
        | json_values,
        "roomId": st.sampled_from(["r", "bad id", ""]) | json_values,
        "payload": json_values,
        "requestId": json_values,
        "entityId": json_values,
        "expectedVersion": json_values,
        "version": json_values,
    },
)


@given(envelopes)
def test_parser_raises_only_protocol_errors(envelope):
    try:
        parse_envelope(envelope, LIMITS)
    except ProtocolError as exc:
        assert exc.code in set(ErrorCode)


@given(st.binary(max_size=64))
def test_parser_survives_arbitrary_bytes(raw):
    try:
        parse_message(raw, LIMITS)
    except ProtocolError as exc:
        assert exc.code in set(ErrorCode)


@pytest.mark.parametrize("frame, message, request_id, room_id", [
    ({"roomId": "r1", "requestId": 1}, "type is required", 1, "r1"),
    ({"type": 5, "roomId": "r1", "requestId": 2}, "type must be a string", 2, "r1"),
    ({"type": "STATE_UPDATE", "roomId": "r1", "requestId": 3, "payload": None},
     "payload must be an object", 3, "r1"),
    ({"type": "STATE_UPDATE", "roomId": "r1", "payload": [1]}, "payload must be an object",
     None, "r1"),
    ({"type": "STATE_UPDATE", "roomId": ["r1"], "requestId": "q"},
     "roomId must match [A-Za-z0-9_.-]{1,64}", "q", None),
    ({"type": "STATE_UPDATE", "roomId": "r/1", "payload": {}},
     "roomId must match [A-Za-z0-9_.-]{1,64}", None, None),
    ({"type": "STATE_UPDATE", "roomId": "r1", "requestId": [1], "payload": {}},
     "requestId must be a string or an integer of at most 64 characters", None, None),
    ({"type": "STATE_UPDATE", "roomId": "r1", "requestId": 4, "payload": {"k" * 200: 1}},
     "payload has a key longer than 64 characters", 4, "r1"),
    ({"type": "STATE_UPDATE", "roomId": "r1", "requestId": 5, "payload": {"a": [[[[[[[[]]]]]]]]}},
     "payload nests deeper than 8 levels", 5, "r1"),
    ({"type": "STATE_UPDATE", "roomId": "r1", "requestId": 6, "payload": {"a": [[[[]]]]}},
     None, 6, "r1"),
])
def test_refusals_say_what_is_wrong_and_echo_what_is_valid(frame, message, request_id, room_id):
    if message is None:  # within the limits: parsed
        assert parse(frame) == StateUpdate("r1", frame["payload"], request_id=request_id)
        return
    error = refusal(frame)
    assert (error.message, error.request_id, error.room_id) == (message, request_id, room_id)
