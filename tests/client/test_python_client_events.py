"""Pure tests of the Python client's side of events (PROTOCOL.md §11): the MESSAGE it
builds, the kinds it refuses before sending, the EVENT it parses, the new error code.

No server: ``send_message`` against a live one is in tests/e2e/test_python_client.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from kasagi_client import (
    KasagiClient,
    NotJoined,
    RoomEvent,
    UnknownMessage,
    error_from_payload,
)
from kasagi_client.events import MalformedMessage, ServerEvent, parse_server_message
from kasagi_client.wire import check_kind, decode, encode, encode_msgpack, message

GOOD_KINDS = ["emote", "coin.taken", "chat:say", "a", "A-Z_0.9:x", "k" * 64]
BAD_KINDS: list[Any] = ["", "k" * 65, "with space", "émote", "emote\n", "a/b", 7, None, ["emote"]]


@pytest.mark.parametrize("kind", GOOD_KINDS)
def test_valid_kinds_pass(kind: str) -> None:
    assert check_kind(kind) == kind
    assert message("r", kind)["payload"]["kind"] == kind


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_kinds_raise_value_error(kind: Any) -> None:
    with pytest.raises(ValueError, match="MESSAGE kind"):
        check_kind(kind)
    with pytest.raises(ValueError, match="MESSAGE kind"):
        message("r", kind, {"x": 1})


def test_message_envelope_carries_kind_and_data() -> None:
    msg = message("room-1", "emote", {"emoji": "🎉"})
    assert msg == {"type": "MESSAGE", "roomId": "room-1",
                   "payload": {"kind": "emote", "data": {"emoji": "🎉"}}}
    assert decode(encode(msg)) == msg
    assert decode(encode_msgpack(msg)) == msg


@pytest.mark.parametrize("data", [0, False, "", [], {}, 1.5, "text", [1, {"a": None}]])
def test_message_keeps_falsy_and_non_object_data(data: Any) -> None:
    assert message("r", "k", data)["payload"] == {"kind": "k", "data": data}


def test_message_without_data_leaves_it_out() -> None:
    # §11: absent means null; the EVENT then carries "data": null
    assert message("r", "ping")["payload"] == {"kind": "ping"}


async def test_send_message_checks_the_kind_then_the_room_without_any_io() -> None:
    client = KasagiClient("ws://127.0.0.1:9/sync")  # never opened
    with pytest.raises(ValueError, match="MESSAGE kind"):
        await client.send_message("no spaces please")
    with pytest.raises(NotJoined):
        await client.send_message("emote", {"emoji": "👋"})
    assert client.stats.messages_out == 0


def parse(msg: dict[str, Any]) -> ServerEvent | None:
    return parse_server_message(msg)


def test_parse_relayed_event() -> None:
    event = parse({
        "type": "EVENT", "roomId": "r", "timestamp": 1764172800000,
        "payload": {"kind": "emoji", "data": {"char": "🎉"}, "from": "p-6f1c"},
    })
    assert event == RoomEvent(room_id="r", kind="emoji", data={"char": "🎉"}, sender="p-6f1c",
                              timestamp=1764172800000)


def test_parse_server_event_has_no_sender_and_null_data() -> None:
    event = parse({"type": "EVENT", "roomId": "r",
                   "payload": {"kind": "coin.taken", "data": None, "from": None}})
    assert isinstance(event, RoomEvent)
    assert (event.kind, event.data, event.sender, event.timestamp) == (
        "coin.taken", None, None, None)
    bare = parse({"type": "EVENT", "roomId": "r", "payload": {"kind": "tick"}})
    assert isinstance(bare, RoomEvent)
    assert bare.data is None and bare.sender is None


def test_parse_event_keeps_non_object_data() -> None:
    event = parse({"type": "EVENT", "roomId": "r", "payload": {"kind": "n", "data": [1, 2]}})
    assert isinstance(event, RoomEvent)
    assert event.data == [1, 2]


@pytest.mark.parametrize(
    "msg",
    [
        {"type": "EVENT", "roomId": "r", "payload": {"data": 1}},  # no kind
        {"type": "EVENT", "roomId": "r", "payload": {"kind": 5}},
        {"type": "EVENT", "payload": {"kind": "k"}},  # no roomId
        {"type": "EVENT", "roomId": "r", "payload": ["kind"]},
    ],
)
def test_parse_rejects_malformed_events(msg: dict[str, Any]) -> None:
    with pytest.raises(MalformedMessage):
        parse(msg)


def test_unknown_message_error_is_typed() -> None:
    exc = error_from_payload({"code": "UNKNOWN_MESSAGE", "message": "no handler for fire"},
                             request_id="py-4", room_id="r")
    assert isinstance(exc, UnknownMessage)
    assert (exc.code, exc.request_id, str(exc)) == (
        "UNKNOWN_MESSAGE", "py-4", "UNKNOWN_MESSAGE: no handler for fire")
