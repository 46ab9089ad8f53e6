"""Documents (§16) on the Redis store: every process serves every document.

**Updates ride the room's log.** A process that accepts a DOC_UPDATE merges it
into its own copy of the document (which validates it: garbage and oversize
updates are refused there, with nothing changed anywhere), appends a ``Y``
entry (``d`` docId, ``u`` the update's bytes, ``f`` the sender, ``p`` this
process) to the room's log, and relays it to its local members. Every other
process applies the entry when its log reader reaches it and relays it to its
own members; a process skips its own entries. So each process applies each
update once, in the log's order, and each member gets it once.

**Compaction.** Each document has a compacted state in Redis (``docs`` hash)
with the log position it covers (``docpos``): every update up to that entry is
in the state. The room's snapshot-lease holder writes it every snapshot
interval for the documents that changed, from its copy and the position its
reader reached (``doccompact.lua`` refuses a position that is not later than
the stored one). A process loading a room's documents reads the states and
every ``Y`` entry still in the log in one script (``docload.lua``) and applies
the entries after each state's position. Yjs updates are idempotent and
commute, so whichever compaction wins, nothing is lost: the entries after its
position hold the rest. (The log is trimmed to about ``KASAGI_RECOVERY_LOG``
entries: the holder compacts every interval, far more often than that.)
When Redis holds no document of a room (it lost the room), the database's
copies (``RoomDocument``) are put back.

It never touches the database on a message's path: the snapshot-lease holder
tells persistence, which reads the encoded state on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ..core.documents import DocumentSet
from ..core.errors import ErrorCode, ProtocolError
from ..documents import document_changed, document_cleared, relay_update, stored_documents
from . import redis_keys as keys
from .redis_scripts import LUA_DIR, Script

if TYPE_CHECKING:
    from .redis import RedisRoomStore

logger = logging.getLogger(__name__)

SCRIPTS = {name: Script((LUA_DIR / f"{name}.lua").read_text())
            for name in ("docload", "doccompact", "docclear")}
#: the position of a state that covers no log entry (put back from the database)
NO_POSITION = "0-0"


def _later(a: bytes | str, b: bytes | str) -> bool:
    """Stream id ``a`` comes after ``b``."""
    a_ms, a_seq = (int(x) for x in (a.decode() if isinstance(a, bytes) else a).split("-"))
    b_ms, b_seq = (int(x) for x in (b.decode() if isinstance(b, bytes) else b).split("-"))
    return (a_ms, a_seq) > (b_ms, b_seq)


class RedisDocuments:
    """The documents of the rooms loaded in this process; see the module docstring."""

    def __init__(self, store: RedisRoomStore) -> None:
        self.store = store
        self.sets: dict[str, DocumentSet] = {}
        #: rooms whose documents are being (re)loaded: not compacted meanwhile
        self.loading: set[str] = set()
        #: (room, doc) → the revision last compacted into Redis
        self.compacted: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None

    # -- loading ------------------------------------------------------------------

    async def load(self, room_id: str) -> None:
        """(Re)load a room's documents from Redis (after the room itself was loaded,
        so the reader reads every entry after what this returns)."""
        store = self.store
        self.loading.add(room_id)
        try:
            docs = DocumentSet(store.limits.max_room_state_bytes)
            states, positions, updates = await self._run(
                "docload", [keys.docs_key(room_id), keys.docpos_key(room_id),
                            keys.log_key(room_id)], [])
            state_of = dict(zip(states[::2], states[1::2], strict=True))
            position_of = dict(zip(positions[::2], positions[1::2], strict=True))
            if not state_of and not updates:
                await self._restore(room_id, docs)
            for doc_id, state in state_of.items():
                self._merge(room_id, docs, doc_id.decode(), state, load=True)
            for entry_id, doc_id, update in updates:
                position = position_of.get(doc_id)
                if position is None or _later(entry_id, position):
                    self._merge(room_id, docs, doc_id.decode(), update)
            if room_id in store.rooms:
                self.sets[room_id] = docs
                for doc_id in docs.ids():
                    self.compacted.pop((room_id, doc_id), None)
        finally:
            self.loading.discard(room_id)
        self._start()

    async def _restore(self, room_id: str, docs: DocumentSet) -> None:
        """Redis holds no document of the room: the database's copies, put back."""
        stored = await stored_documents(self.store.directory, room_id)
        for doc_id, state in stored.items():
            self._merge(room_id, docs, doc_id, state, load=True)
            await self._run("doccompact", [keys.docs_key(room_id), keys.docpos_key(room_id)],
                            [doc_id, state, NO_POSITION])

    @staticmethod
    def _merge(room_id: str, docs: DocumentSet, doc_id: str, data: bytes,
               *, load: bool = False) -> None:
        try:
            if not data:
                docs.clear(doc_id)
            elif load:
                docs.load(doc_id, data)
            else:
                docs.merge(doc_id, data)
        except ValueError:
            logger.error("room %s: document %s: an update in Redis does not decode; skipped",
                         room_id, doc_id)

    # -- the log ------------------------------------------------------------------

    def on_entry(self, room_id: str, fields: dict[bytes, bytes]) -> None:
        """A ``Y`` entry read from the room's log (the reader calls it, in order)."""
        if fields.get(b"p") == self.store.proc.encode():
            return  # ours: merged and relayed when it was accepted
        docs = self.sets.get(room_id)
        if docs is None:
            return  # being loaded: docload.lua returns this entry too
        doc_id = fields[b"d"].decode()
        if b"x" in fields:
            docs.clear(doc_id)
            return
        update = fields[b"u"]
        self._merge(room_id, docs, doc_id, update)
        sender = fields.get(b"f")
        relay_update(self.store.hub.get(room_id), doc_id, update,
                     sender.decode() if sender else None)
        self._changed(room_id, doc_id)

    # -- what the consumer calls (through the store) ------------------------------------

    def _set(self, room_id: str) -> DocumentSet:
        self.store._live(room_id)  # NOT_IN_ROOM / ROOM_CLOSED
        docs = self.sets.get(room_id)
        if docs is None:
            raise ProtocolError(ErrorCode.INTERNAL, "the room's documents are not loaded yet")
        return docs

    def sync(self, room_id: str, doc_id: str, state_vector: bytes) -> tuple[bytes, bytes]:
        return self._set(room_id).sync(doc_id, state_vector)

    async def update(self, room_id: str, player_id: str, doc_id: str, update: bytes) -> None:
        docs = self._set(room_id)
        docs.apply(doc_id, update)
        store = self.store
        try:
            await store.scripts.command(
                "XADD", keys.log_key(room_id), "MAXLEN", "~", store.scripts.log_maxlen, "*",
                "k", "Y", "d", doc_id, "u", update, "f", player_id, "p", store.proc)
        except (RedisError, OSError) as exc:
            raise ProtocolError(ErrorCode.INTERNAL, "documents are unavailable") from exc
        relay_update(store.hub.get(room_id), doc_id, update, player_id)
        self._changed(room_id, doc_id)

    def ids(self, room_id: str) -> list[str]:
        docs = self.sets.get(room_id)
        return docs.ids() if docs is not None else []

    def persisted(self, room_id: str, doc_id: str) -> tuple[bytes, int] | None:
        docs = self.sets.get(room_id)
        return docs.encoded(doc_id) if docs is not None else None

    async def clear(self, room_id: str, doc_id: str) -> bool:
        store = self.store
        docs = self.sets.get(room_id)
        cleared = docs is not None and doc_id in docs.ids()
        await self._run("docclear", [keys.docs_key(room_id), keys.docpos_key(room_id),
                                     keys.log_key(room_id)], [doc_id, store.scripts.log_maxlen])
        docs = self.sets.get(room_id)
        if docs is not None:
            docs.clear(doc_id)  # (our reader may have done it already, from the entry)
        document_cleared(store.persistence, room_id, doc_id)
        return cleared

    def _changed(self, room_id: str, doc_id: str) -> None:
        live = self.store.rooms.get(room_id)
        if live is not None and live.snapshot_duty:
            document_changed(self.store.persistence, room_id, doc_id)

    # -- compaction ---------------------------------------------------------------

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._compact_loop(), name="kasagi-redis-documents")

    async def _compact_loop(self) -> None:
        store = self.store
        while not store.stopping:
            await asyncio.sleep(store.snapshot_interval)
            try:
                await self.compact()
            except (RedisError, OSError) as exc:
                logger.warning("document compaction failed (%s); retrying", exc)
            except Exception:
                logger.exception("document compaction failed")

    async def compact(self, *, every: bool = False) -> int:
        """Write the changed documents of the rooms this process holds the snapshot
        lease of (``every``: of every loaded room, at a clean stop); how many."""
        store = self.store
        written = 0
        for room_id in list(self.sets):
            live = store.rooms.get(room_id)
            if live is None:
                self.sets.pop(room_id, None)  # unloaded
                continue
            docs = self.sets[room_id]
            if live.stale or room_id in self.loading or not (every or live.snapshot_duty):
                continue
            if live.snapshot_duty:  # the lease may have just moved here: tell persistence
                for doc_id in docs.ids():
                    if (room_id, doc_id) not in self.compacted:
                        document_changed(store.persistence, room_id, doc_id)
            for doc_id in docs.ids():
                revision = docs.revision(doc_id)
                if revision is None or self.compacted.get((room_id, doc_id)) == revision:
                    continue
                encoded = docs.encoded(doc_id)
                position = live.stream_id  # every entry up to here is in ``encoded``
                if encoded is None:
                    continue
                await self._run("doccompact",
                                [keys.docs_key(room_id), keys.docpos_key(room_id)],
                                [doc_id, encoded[0], position])
                self.compacted[(room_id, doc_id)] = encoded[1]
                written += 1
        return written

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self.compact(every=True)

    async def _run(self, name: str, keys_: list[str], args: list[Any]) -> Any:
        """One of this module's scripts, on the store's script connection (in order
        with the room scripts)."""
        return await self.store.scripts.run(SCRIPTS[name], keys_, args)


class RedisDocumentMethods:
    """The ``DocumentStore`` methods of ``RedisRoomStore``, served by its ``documents``."""

    documents: RedisDocuments

    async def doc_sync(self, room_id: str, doc_id: str, state_vector: bytes) -> tuple[bytes, bytes]:
        return self.documents.sync(room_id, doc_id, state_vector)

    async def doc_update(self, room_id: str, player_id: str, doc_id: str, update: bytes) -> None:
        await self.documents.update(room_id, player_id, doc_id, update)

    def doc_ids(self, room_id: str) -> list[str]:
        return self.documents.ids(room_id)

    def persisted_document(self, room_id: str, doc_id: str) -> tuple[bytes, int] | None:
        return self.documents.persisted(room_id, doc_id)

    async def clear_document(self, room_id: str, doc_id: str) -> bool:
        return await self.documents.clear(room_id, doc_id)
