"""Documents (§16, DOC_SYNC / DOC_UPDATE) against a real daphne, both codecs.

The peers are real Yjs documents (pycrdt, the Python binding of yrs): what the
server sends must merge into them, and what they send must merge on the server.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pycrdt import Doc, Text

from tests.wsclient import BinConn, Conn, MsgpackConn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def raw(value: Any) -> bytes:
    """A binary field as received: bytes (MessagePack) or base64 (JSON)."""
    return value if isinstance(value, bytes) else base64.b64decode(value, validate=True)


def wire(conn: Conn, data: bytes) -> Any:
    return data if isinstance(conn, MsgpackConn | BinConn) else b64(data)


def text_doc(content: str = "", client_id: int | None = None) -> Doc:
    doc: Doc = Doc(client_id=client_id) if client_id is not None else Doc()
    if content:
        doc.get("note", type=Text).insert(0, content)
    return doc


def text_of(doc: Doc) -> str:
    return str(doc.get("note", type=Text))


def edit(doc: Doc, index: int, content: str) -> bytes:
    """Insert into the doc's note and return the update that made the change."""
    before = doc.get_state()
    doc.get("note", type=Text).insert(index, content)
    return doc.get_update(before)


async def sync(conn: Conn, room_id: str, doc: Doc, doc_id: str = "note", **extra: Any) -> dict:
    await conn.send({"type": "DOC_SYNC", "roomId": room_id, "requestId": "s-1",
                     "payload": {"docId": doc_id, "stateVector": wire(conn, doc.get_state())},
                     **extra})
    answer = await conn.expect("DOC_SYNC")
    doc.apply_update(raw(answer["payload"]["update"]))
    return answer


async def send_update(conn: Conn, room_id: str, update: bytes, doc_id: str = "note",
                      **extra: Any) -> None:
    await conn.send({"type": "DOC_UPDATE", "roomId": room_id,
                     "payload": {"docId": doc_id, "update": wire(conn, update)}, **extra})


async def members(server: Any, room_id: str, codecs: tuple[type[Conn], ...]) -> list[Conn]:
    conns = []
    for n, cls in enumerate(codecs):
        conn = await cls.open(server.ws_url)
        await conn.join(room_id, playerName=f"P{n}")
        conns.append(conn)
    for n, conn in enumerate(conns):  # drain the PLAYER_JOINED of the later joiners
        for _ in range(len(conns) - 1 - n):
            await conn.expect("PLAYER_JOINED")
    return conns


CODECS = [pytest.param((Conn, Conn), id="json"), pytest.param((MsgpackConn, MsgpackConn),
          id="msgpack"), pytest.param((Conn, MsgpackConn), id="mixed"),
          pytest.param((BinConn, Conn), id="bin1-json"), pytest.param((MsgpackConn, BinConn),
          id="msgpack-bin1")]


@pytest.mark.parametrize("codecs", CODECS)
async def test_an_update_is_merged_and_relayed_as_the_same_bytes(kasagi_server, room_id, codecs):
    a, b = await members(kasagi_server, room_id, codecs)
    watcher = await Conn.open(kasagi_server.ws_url)
    await watcher.join(room_id, spectate=True)
    doc_a = text_doc()
    empty = await sync(a, room_id, doc_a)
    assert empty["requestId"] == "s-1" and empty["payload"]["docId"] == "note"
    assert isinstance(empty["timestamp"], int) and "version" not in empty
    update = edit(doc_a, 0, "hello")
    await send_update(a, room_id, update, requestId="u-1")
    full_b = b.seen[0]["payload"]
    assert full_b["docs"] == []  # b joined before the document existed
    a_id = a.seen[0]["payload"]["playerId"]
    for member in (b, watcher):
        relayed = await member.expect("DOC_UPDATE")
        assert relayed["payload"]["docId"] == "note" and relayed["payload"]["from"] == a_id
        assert raw(relayed["payload"]["update"]) == update  # the same bytes
        assert relayed["roomId"] == room_id and "version" not in relayed
        if not isinstance(member, MsgpackConn | BinConn):
            assert isinstance(relayed["payload"]["update"], str)
    if isinstance(b, MsgpackConn | BinConn):
        assert isinstance(b.seen[-1]["payload"]["update"], bytes)  # raw bytes, not base64
    await a.nothing()  # the sender gets nothing on success
    doc_b = text_doc()
    answer = await sync(b, room_id, doc_b)
    assert text_of(doc_b) == "hello"
    assert raw(answer["payload"]["stateVector"]) == doc_a.get_state()
    late = await Conn.open(kasagi_server.ws_url)
    full = await late.join(room_id, playerName="late")
    assert full["payload"]["docs"] == ["note"]


async def test_sync_sends_only_what_the_client_lacks_and_both_sides_converge(
    kasagi_server, room_id,
):
    a, b = await members(kasagi_server, room_id, (Conn, Conn))
    doc_a = text_doc()
    await sync(a, room_id, doc_a)
    await send_update(a, room_id, edit(doc_a, 0, "shared text "))
    await b.expect("DOC_UPDATE")
    doc_b = text_doc()
    await sync(b, room_id, doc_b)
    # b edits offline, then syncs: the server's answer lacks nothing of b's,
    # and b sends what the server's vector lacks.
    offline = edit(doc_b, len(text_of(doc_b)), "from b")
    answer = await sync(b, room_id, doc_b)
    assert len(raw(answer["payload"]["update"])) < len(doc_a.get_update())
    server_vector = raw(answer["payload"]["stateVector"])
    missing = doc_b.get_update(server_vector)
    assert missing and missing != b"\x00\x00"
    await send_update(b, room_id, missing)
    doc_a.apply_update(raw((await a.expect("DOC_UPDATE"))["payload"]["update"]))
    assert text_of(doc_a) == text_of(doc_b) == "shared text from b"
    assert offline  # the offline edit travelled in ``missing``


async def test_concurrent_edits_at_the_same_place_keep_every_keystroke(kasagi_server, room_id):
    a, b = await members(kasagi_server, room_id, (Conn, MsgpackConn))
    doc_a, doc_b = text_doc(), text_doc()
    await sync(a, room_id, doc_a)
    await send_update(a, room_id, edit(doc_a, 0, "[]"))
    doc_b.apply_update(raw((await b.expect("DOC_UPDATE"))["payload"]["update"]))
    for _ in range(20):  # both type at index 1 at once, without waiting for each other
        await send_update(a, room_id, edit(doc_a, 1, "a"))
        await send_update(b, room_id, edit(doc_b, 1, "b"))
    for conn, doc in ((a, doc_a), (b, doc_b)):
        for _ in range(20):
            doc.apply_update(raw((await conn.expect("DOC_UPDATE"))["payload"]["update"]))
    assert text_of(doc_a) == text_of(doc_b)
    assert sorted(text_of(doc_a)) == sorted("[]" + "a" * 20 + "b" * 20)
    fresh = text_doc()
    await sync(a, room_id, fresh)
    assert text_of(fresh) == text_of(doc_a)


@pytest.mark.parametrize("cls", [Conn, MsgpackConn, BinConn], ids=["json", "msgpack", "bin1"])
async def test_refusals_change_nothing(kasagi_server, room_id, cls):
    a, b = await members(kasagi_server, room_id, (cls, Conn))
    doc_a = text_doc()
    await sync(a, room_id, doc_a)
    await send_update(a, room_id, edit(doc_a, 0, "kept"))
    await b.expect("DOC_UPDATE")
    garbage = b"\x07\xff\x00garbage that is not a Yjs update"
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"docId": "note", "update": wire(a, garbage)}, "INVALID_UPDATE"),
        ({"docId": "note", "update": "not base64!"}, "BAD_MESSAGE"),
        ({"docId": "note", "update": "aGVsbG8"}, "BAD_MESSAGE"),  # unpadded
        ({"docId": "note", "update": 12}, "BAD_MESSAGE"),
        ({"docId": "note"}, "BAD_MESSAGE"),
        ({"docId": "bad id!", "update": wire(a, b"\x00\x00")}, "BAD_MESSAGE"),
    ]
    for n, (payload, code) in enumerate(refusals):
        await a.send({"type": "DOC_UPDATE", "roomId": room_id, "requestId": f"r-{n}",
                      "payload": payload})
        error = await a.expect("ERROR")
        assert (error["payload"]["code"], error["requestId"]) == (code, f"r-{n}"), error
    await a.send({"type": "DOC_SYNC", "roomId": room_id, "requestId": "v",
                  "payload": {"docId": "note", "stateVector": wire(a, b"\xff\xff\xff")}})
    assert (await a.expect("ERROR"))["payload"]["code"] == "BAD_MESSAGE"
    await a.send({"type": "DOC_SYNC", "roomId": "elsewhere",
                  "payload": {"docId": "note", "stateVector": wire(a, b"\x00")}})
    assert (await a.expect("ERROR"))["payload"]["code"] == "NOT_IN_ROOM"
    await b.nothing()  # nothing was relayed
    check = text_doc()
    await sync(b, room_id, check)
    assert text_of(check) == "kept"
    assert b.seen[-1]["payload"]["docId"] == "note"


async def test_spectators_read_but_never_write(kasagi_server, room_id):
    (a,) = await members(kasagi_server, room_id, (Conn,))
    doc_a = text_doc()
    await sync(a, room_id, doc_a)
    await send_update(a, room_id, edit(doc_a, 0, "visible"))
    watcher = await MsgpackConn.open(kasagi_server.ws_url)
    full = await watcher.join(room_id, spectate=True)
    assert full["payload"]["docs"] == ["note"]
    seen = text_doc()
    await sync(watcher, room_id, seen)
    assert text_of(seen) == "visible"
    await send_update(watcher, room_id, edit(seen, 0, "x"), requestId="w")
    error = await watcher.expect("ERROR")
    assert (error["payload"]["code"], error["requestId"]) == ("FORBIDDEN", "w")
    await a.nothing()


async def test_documents_are_separate_and_size_limited(start_server, room_id):
    server = start_server(KASAGI_MAX_ROOM_STATE_BYTES="4096", KASAGI_MAX_FRAME_BYTES="65536")
    a, b = await members(server, room_id, (Conn, Conn))
    small, big = text_doc(), text_doc()
    await send_update(a, room_id, edit(small, 0, "small"), doc_id="small")
    await b.expect("DOC_UPDATE", docId="small")
    await send_update(a, room_id, edit(big, 0, "x" * 3000), doc_id="big")
    await b.expect("DOC_UPDATE", docId="big")
    await send_update(a, room_id, edit(big, 0, "y" * 1500), doc_id="big", requestId="too")
    error = await a.expect("ERROR")
    assert (error["payload"]["code"], error["requestId"]) == ("PAYLOAD_TOO_LARGE", "too")
    await b.nothing()
    # the refused update changed nothing; the other document is unaffected by the limit
    check = text_doc()
    await sync(b, room_id, check, doc_id="big")
    assert text_of(check) == "x" * 3000
    await send_update(a, room_id, edit(small, 5, "z" * 3000), doc_id="small")
    await b.expect("DOC_UPDATE", docId="small")
    full = await (await Conn.open(server.ws_url)).join(room_id, playerName="c")
    assert full["payload"]["docs"] == ["big", "small"]
