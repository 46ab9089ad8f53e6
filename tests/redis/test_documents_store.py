"""The Redis store's documents (sync/store/redis_docs.py) with two stores in one test
process on a real Redis: updates through the log, refusals that reach nobody, a clear
seen by both, compaction by the lease holder, and a loader that sees it all."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Text

from sync.core.errors import ErrorCode, ProtocolError
from sync.directory import Identity, MemoryDirectory, RoomConfig
from sync.store import redis_keys as keys
from tests.redis.test_key_layout import Socket, new_store, until

pytestmark = [pytest.mark.redis, pytest.mark.asyncio, pytest.mark.timeout(60)]


def typed(doc: Doc, text: str) -> bytes:
    before = doc.get_state()
    note = doc.get("note", type=Text)
    note.insert(len(str(note)), text)
    return doc.get_update(before)


def text_in(store, room_id: str) -> str:
    state = store.persisted_document(room_id, "note")
    if state is None:
        return ""
    doc: Doc = Doc()
    doc.apply_update(state[0])
    return str(doc.get("note", type=Text))


async def test_two_stores_share_documents_through_the_log(redis_url, room_id):
    directory = MemoryDirectory()
    directory.configs[room_id] = RoomConfig(room_id)
    a, b = new_store(redis_url, directory, 5), new_store(redis_url, directory, 5)
    nobody = Identity()
    try:
        for store in (a, b):
            await store.activate(room_id, who=nobody, create=False)
        one = await a.join(room_id, {}, who=nobody, session_token=None, connection=Socket())
        two = await b.join(room_id, {}, who=nobody, session_token=None, connection=Socket())
        writer: Doc = Doc()
        await a.doc_update(room_id, one.player_id, "note", typed(writer, "from a"))
        await until(lambda: text_in(b, room_id) == "from a", "b applies a's entry")
        other: Doc = Doc()
        other.apply_update(writer.get_update())
        await b.doc_update(room_id, two.player_id, "note", typed(other, " and b"))
        await until(lambda: text_in(a, room_id) == "from a and b", "a applies b's entry")
        # a refused update changes nothing anywhere
        with pytest.raises(ProtocolError) as refused:
            await a.doc_update(room_id, one.player_id, "note", b"\x05garbage")
        assert refused.value.code is ErrorCode.INVALID_UPDATE
        assert a.doc_ids(room_id) == b.doc_ids(room_id) == ["note"]
        # the lease holder compacts into Redis; a third store loads state + log
        for store in (a, b):
            await store.janitor.renew_leases()
            await store.documents.compact()
        assert await a.redis.hget(keys.docs_key(room_id), "note") is not None
        c = new_store(redis_url, directory, 5)
        try:
            await c.activate(room_id, who=nobody, create=False)
            assert text_in(c, room_id) == "from a and b"
        finally:
            await c.stop()
        # a clear on one process empties every process's copy and Redis
        assert await a.clear_document(room_id, "note") is True
        await until(lambda: b.doc_ids(room_id) == [], "b drops the cleared document")
        assert await a.redis.hget(keys.docs_key(room_id), "note") is None
        d = new_store(redis_url, directory, 5)
        try:
            await d.activate(room_id, who=nobody, create=False)
            assert d.doc_ids(room_id) == []  # the updates before the clear are skipped
        finally:
            await d.stop()
    finally:
        await a.stop()
        await b.stop()
