"""Documents (§16) in the database: written in the background, compacted (one row per
document holding its merged state), loaded on activation, nothing lost on a clean stop."""

from __future__ import annotations

import signal

import pytest
from pycrdt import Doc, Text

from tests.e2e.test_documents import edit, members, raw, send_update, sync, text_doc, text_of
from tests.persistence.livedb import LiveDB, eventually
from tests.wsclient import Conn, MsgpackConn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

#: the in-memory store: with REDIS_URL the documents' state of record is Redis
MEMORY_STORE = ""


def stored(live_db: LiveDB, room_id: str) -> dict[str, bytes]:
    rows = live_db.rows(
        "SELECT d.doc_id, d.state, d.size FROM rooms_roomdocument d"
        " JOIN rooms_room r ON r.id = d.room_id WHERE r.room_id = ?", room_id)
    for row in rows:
        assert row["size"] == len(bytes(row["state"]))
    return {row["doc_id"]: bytes(row["state"]) for row in rows}


def text_in(state: bytes, root: str = "note") -> str:
    doc: Doc = Doc()
    doc.apply_update(state)
    return str(doc.get(root, type=Text))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_clean_stop_loses_nothing(start_server, live_db: LiveDB, room_id: str, sig: int):
    # An interval far longer than the test: only the stop's flush can write the documents.
    server = start_server(REDIS_URL=MEMORY_STORE, KASAGI_SNAPSHOT_INTERVAL="300")
    a, b = await members(server, room_id, (Conn, MsgpackConn))
    doc_a, doc_b = text_doc(), text_doc()
    await send_update(a, room_id, edit(doc_a, 0, "persisted "))
    doc_b.apply_update(raw((await b.expect("DOC_UPDATE"))["payload"]["update"]))
    await send_update(b, room_id, edit(doc_b, len(text_of(doc_b)), "text"))
    await a.expect("DOC_UPDATE", docId="note")
    await send_update(b, room_id, edit(text_doc(), 0, "other"), doc_id="second")
    await a.expect("DOC_UPDATE", docId="second")
    assert stored(live_db, room_id) == {}

    assert server.stop(sig) == 0, server.log()
    assert "Traceback" not in server.log()
    rows = stored(live_db, room_id)
    assert set(rows) == {"note", "second"}
    assert text_in(rows["note"]) == "persisted text"
    assert text_in(rows["second"]) == "other"

    server.start()
    late = await Conn.open(server.ws_url)
    full = await late.join(room_id, playerName="late")
    assert full["payload"]["docs"] == ["note", "second"]
    fresh = text_doc()
    await sync(late, room_id, fresh)
    assert text_of(fresh) == "persisted text"
    # the restored document merges further edits from a peer that kept its copy
    keeper = await Conn.open(server.ws_url)
    await keeper.join(room_id, playerName="keeper")
    await send_update(keeper, room_id, edit(doc_b, 0, ">"))
    await late.expect("DOC_UPDATE")
    check = text_doc()
    await sync(keeper, room_id, check)
    assert text_of(check) == ">persisted text"


async def test_storage_follows_the_document_not_the_keystrokes(
    start_server, live_db: LiveDB, room_id: str,
):
    server = start_server(REDIS_URL=MEMORY_STORE, KASAGI_SNAPSHOT_INTERVAL="0.2",
                          KASAGI_RATE_LIMIT="10000", KASAGI_RATE_BURST="10000")
    (a,) = await members(server, room_id, (Conn,))
    doc = text_doc()
    text = doc.get("note", type=Text)
    sent = 0
    for n in range(400):  # one update per keystroke, with some deletions
        before = doc.get_state()
        text.insert(len(str(text)), "k")
        if n % 4 == 3:
            del text[0]
        update = doc.get_update(before)
        sent += len(update)
        await send_update(a, room_id, update)
    await a.send({"type": "PING", "requestId": "p"})
    await a.expect("PONG")  # every update was merged

    def written() -> bytes | None:
        state = stored(live_db, room_id).get("note")
        return state if state is not None and text_in(state) == str(text) else None

    state = await eventually(written, what="the document's merged state in its row")
    assert len(stored(live_db, room_id)) == 1  # one row, rewritten in place
    assert len(state) < sent / 4
    assert "Traceback" not in server.log()
