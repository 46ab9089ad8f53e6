"""The pure core of documents (§16): binary fields, the envelopes, DocumentSet."""

from __future__ import annotations

import base64
import os

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from sync.core.codec import MSGPACK
from sync.core.documents import (
    EMPTY_UPDATE,
    DocumentSet,
    binary_field,
    text_roots,
    wire_bytes,
)
from sync.core.envelope import DocSync, DocUpdate, parse_envelope
from sync.core.errors import ErrorCode, ProtocolError
from sync.core.limits import Limits


def typed(text: str) -> bytes:
    doc: Doc = Doc()
    doc.get("note", type=Text).insert(0, text)
    return doc.get_update()


def code_of(call) -> ErrorCode:
    with pytest.raises(ProtocolError) as caught:
        call()
    return caught.value.code


@pytest.mark.parametrize("value", ["aGVsbG8", "aGVs bG8=", "aGVsbG8-", "é", "a===", 5, [1]])
def test_a_binary_field_is_standard_padded_base64_or_bytes(value):
    assert code_of(lambda: binary_field({"u": value}, "u")) is ErrorCode.BAD_MESSAGE


def test_binary_field_round_trips():
    data = os.urandom(50)
    assert binary_field({"u": base64.b64encode(data).decode()}, "u") == data
    assert binary_field({"u": data}, "u") == data
    assert binary_field({"u": wire_bytes(data, False)}, "u") == data
    assert wire_bytes(data, True) is data
    assert code_of(lambda: binary_field({}, "u")) is ErrorCode.BAD_MESSAGE


def test_envelopes_parse_on_both_codecs():
    update = typed("hi")
    json_frame = {"type": "DOC_UPDATE", "roomId": "r", "requestId": 3,
                  "payload": {"docId": "note", "update": base64.b64encode(update).decode()}}
    assert parse_envelope(json_frame, Limits()) == DocUpdate("r", "note", update, 3)
    packed = msgpack.packb({"type": "DOC_SYNC", "roomId": "r",
                            "payload": {"docId": "n", "stateVector": b"\x00"}})
    assert parse_envelope(MSGPACK.decode(packed), Limits()) == DocSync("r", "n", b"\x00")
    bad_id = {"type": "DOC_SYNC", "roomId": "r", "payload": {"docId": "", "stateVector": "AA=="}}
    assert code_of(lambda: parse_envelope(bad_id, Limits())) is ErrorCode.BAD_MESSAGE


def test_msgpack_allows_bytes_only_in_the_binary_fields_of_documents():
    for frame in (
        {"type": "STATE_UPDATE", "roomId": "r", "payload": {"x": b"\x00"}},
        {"type": "DOC_UPDATE", "roomId": "r", "payload": {"docId": "n", "other": b"\x00"}},
        {"type": "DOC_UPDATE", "roomId": b"r", "payload": {"docId": "n", "update": b"\x00"}},
    ):
        assert code_of(lambda f=frame: MSGPACK.decode(msgpack.packb(f))) is ErrorCode.BAD_JSON


def test_sync_answers_what_the_vector_lacks():
    docs = DocumentSet(1 << 20)
    assert docs.sync("note", b"\x00") == (EMPTY_UPDATE, b"\x00")
    assert docs.ids() == []
    docs.apply("note", typed("hello"))
    client: Doc = Doc()
    update, vector = docs.sync("note", client.get_state())
    client.apply_update(update)
    assert str(client.get("note", type=Text)) == "hello"
    assert vector == client.get_state()
    assert docs.sync("note", vector)[0] == EMPTY_UPDATE  # nothing lacking
    assert code_of(lambda: docs.sync("note", b"\xff\xff")) is ErrorCode.BAD_MESSAGE
    assert docs.ids() == ["note"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_is_refused_and_changes_nothing(garbage):
    docs = DocumentSet(1 << 20)
    docs.apply("note", typed("kept"))
    before = docs.encoded("note")
    try:
        docs.apply("note", garbage)
    except ProtocolError as exc:
        assert exc.code is ErrorCode.INVALID_UPDATE
        assert docs.encoded("note") == before
    try:
        docs.apply("other", garbage)
    except ProtocolError:
        assert docs.ids() == ["note"]  # a refused update creates no document


def test_the_size_limit_is_per_document_and_exact_near_it():
    docs = DocumentSet(2000)
    docs.apply("a", typed("x" * 1500))
    assert code_of(lambda: docs.apply("a", typed("y" * 600))) is ErrorCode.PAYLOAD_TOO_LARGE
    state = docs.encoded("a")
    assert state is not None and len(state[0]) <= 2000
    docs.apply("b", typed("y" * 1500))  # another document, its own limit
    # many small updates: the bound is re-measured and the limit still holds exactly
    doc: Doc = Doc()
    doc.apply_update(docs.encoded("a")[0])  # type: ignore[index]
    text = doc.get("note", type=Text)
    refused = 0
    for _ in range(200):
        before = doc.get_state()
        text.insert(0, "z")
        try:
            docs.apply("a", doc.get_update(before))
        except ProtocolError as exc:
            assert exc.code is ErrorCode.PAYLOAD_TOO_LARGE
            refused += 1
            break
    assert refused == 1
    assert len(docs.encoded("a")[0]) <= 2000  # type: ignore[index]


def test_the_encoded_state_is_compacted_and_reloads():
    docs = DocumentSet(1 << 20)
    doc: Doc = Doc()
    text = doc.get("note", type=Text)
    total = 0
    for n in range(300):
        before = doc.get_state()
        text.insert(len(str(text)), "k")
        if n % 3 == 0:
            del text[0]
        update = doc.get_update(before)
        total += len(update)
        docs.apply("note", update)
    state, revision = docs.encoded("note")  # type: ignore[misc]
    docs.apply("note", b"\x00\x00")
    assert docs.encoded("note")[1] > revision  # type: ignore[index]
    assert len(state) < total / 4  # the merged document, not the list of keystrokes
    again = DocumentSet(1 << 20)
    again.load("note", state)
    assert again.encoded("note")[0] == state  # type: ignore[index]
    assert text_roots(state) == {"note": str(text)}
    assert docs.clear("note") and docs.ids() == [] and not docs.clear("note")
