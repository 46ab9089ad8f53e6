"""Wire encodings: JSON text, MessagePack binary (§1), and what neither may let in."""

from __future__ import annotations

import datetime
import uuid

import msgpack
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.core.codec import JSON, JSON_DEFLATE, MSGPACK, codec_for
from sync.core.errors import ErrorCode, ProtocolError
from sync.directory import Identity

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def test_codec_follows_the_offered_subprotocols():
    assert codec_for(None) is JSON
    assert codec_for([]) is JSON
    assert codec_for(["chat", "kasagi.msgpack"]) is MSGPACK
    assert codec_for(["kasagi.json"]) is JSON


@given(json_values)
def test_both_codecs_round_trip_every_json_value(value):
    message = {"type": "DELTA_UPDATE", "payload": {"v": value}}
    for codec in (JSON, MSGPACK):
        assert codec.decode(codec.encode(message)) == message


def test_msgpack_frames_are_smaller_than_json_for_game_state():
    players = {f"p-{i:06x}": {"x": 512, "y": 77, "s": 1041} for i in range(20)}
    frame = {"type": "DELTA_UPDATE", "roomId": "arena-1", "version": 1041, "baseVersion": 1040,
             "timestamp": 1764172800000, "payload": {"players": players}}
    assert len(MSGPACK.encode(frame)) < 0.8 * len(JSON.encode(frame))


def test_values_msgpack_has_no_type_for_encode_as_json_would():
    frame = {"id": uuid.UUID(int=7), "at": datetime.datetime(2026, 11, 27, 3, 0)}
    assert MSGPACK.decode(MSGPACK.encode(frame)) == orjson.loads(JSON.encode(frame))


@pytest.mark.parametrize("raw", [
    b"\xc1",
    msgpack.packb({"b": b"\x00"}),
    msgpack.packb({"n": [1, float("nan")]}),
    msgpack.packb({"i": {"deep": float("-inf")}}),
    msgpack.packb({b"key": 1}),
    msgpack.packb({"t": msgpack.ExtType(1, b"x")}),
    msgpack.packb({"t": datetime.datetime.now(datetime.UTC)}, datetime=True),
    msgpack.packb([1]) + b"\x01",  # trailing bytes
])
def test_msgpack_that_json_cannot_carry_is_bad_json(raw):
    with pytest.raises(ProtocolError) as refused:
        MSGPACK.decode(raw)
    assert refused.value.code is ErrorCode.BAD_JSON


def test_text_frames_are_json_on_either_codec():
    assert MSGPACK.decode('{"type": "PING"}') == {"type": "PING"}
    with pytest.raises(ProtocolError):
        JSON.decode(msgpack.packb({"type": "PING"}))


def test_uuid_user_ids_travel_as_strings():
    uid = uuid.uuid4()
    fields = Identity(user_id=uid, username="ann").player_fields()
    assert fields == {"userId": str(uid), "username": "ann"}
    assert Identity(user_id=42, username="bob").player_fields()["userId"] == 42


@pytest.mark.parametrize("codec", [JSON, JSON_DEFLATE, MSGPACK])
def test_a_connections_inbound_decodes_as_its_codec_does(codec):
    inbound = codec.inbound()
    frames = ['{"type":"PING","n":1.5}', b'{"type":"PING"}', msgpack.packb({"type": "PING"}),
              b"\xff", "[1,", "", b""]
    for raw in frames:
        try:
            expected = codec.decode(raw)
        except ProtocolError as error:
            with pytest.raises(ProtocolError) as info:
                inbound.decode(raw)
            assert (info.value.code, info.value.message) == (error.code, error.message)
        else:
            assert inbound.decode(raw) == expected
