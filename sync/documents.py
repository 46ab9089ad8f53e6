"""Documents (PROTOCOL.md §16) in a store: what both stores share around the core.

``sync.core.documents.DocumentSet`` decides (decode, merge, size); this module
carries out the rest on the event loop: the relay of an accepted update to the
room's other members in this process (spectators included, the sender
excluded, the same bytes encoded once per codec), the persistence hook, and
the loading of stored documents when a room is activated. A store that serves
documents is a :class:`DocumentStore`; the consumer asks for one with
:func:`documents_of`. Nothing here awaits the database on a message's path.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

from .core.codec import Codec
from .core.documents import DocumentSet, wire_bytes
from .core.errors import ErrorCode, ProtocolError
from .core.frames import doc_update_frame
from .hub import Hub, RoomFanout, now_ms

logger = logging.getLogger(__name__)


@runtime_checkable
class DocumentStore(Protocol):
    """What a store that serves documents adds to ``RoomStore``."""

    async def doc_sync(self, room_id: str, doc_id: str, state_vector: bytes) -> tuple[bytes, bytes]:
        """(what the vector lacks, the server's state vector) of a loaded room's document."""
        ...

    async def doc_update(self, room_id: str, player_id: str, doc_id: str, update: bytes) -> None:
        """Merge a player's update and relay it to the room's other members, or raise
        INVALID_UPDATE / PAYLOAD_TOO_LARGE with nothing changed."""
        ...

    def doc_ids(self, room_id: str) -> list[str]:
        """The documents of a room loaded here."""
        ...

    def persisted_document(self, room_id: str, doc_id: str) -> tuple[bytes, int] | None:
        """(encoded state, revision) of a document for the database, without awaiting;
        None when the room is not loaded here (or the document is gone)."""
        ...

    async def clear_document(self, room_id: str, doc_id: str) -> bool:
        """Forget a document (staff); True if it existed."""
        ...


@runtime_checkable
class DocumentPersistence(Protocol):
    """The persistence hooks for documents (``rooms.persistence``)."""

    def document_changed(self, room_id: str, doc_id: str) -> None: ...
    def document_cleared(self, room_id: str, doc_id: str) -> None: ...


def documents_of(store: Any) -> DocumentStore:
    """The store as a ``DocumentStore``, or INTERNAL if it serves none."""
    if not isinstance(store, DocumentStore):
        raise ProtocolError(ErrorCode.INTERNAL, "this server's store does not serve documents")
    return store


def document_changed(persistence: Any, room_id: str, doc_id: str) -> None:
    if isinstance(persistence, DocumentPersistence):
        persistence.document_changed(room_id, doc_id)


def document_cleared(persistence: Any, room_id: str, doc_id: str) -> None:
    if isinstance(persistence, DocumentPersistence):
        persistence.document_cleared(room_id, doc_id)


def relay_update(
    fanout: RoomFanout | None, doc_id: str, update: bytes, sender: str | None,
) -> None:
    """DOC_UPDATE with ``from`` to every member of the room here but the sender's
    socket, spectators included; one frame encoded once per codec.

    Not held for a lagging member: unlike an EVENT an update is not ephemeral
    (every later update may depend on it), so it is written like any frame.
    """
    if fanout is None:
        return
    timestamp = now_ms()
    encoded: dict[Codec, bytes] = {}
    for member in list(fanout.members.values()):
        if sender is not None and member.player_id == sender:
            continue
        codec = member.codec
        data = encoded.get(codec)
        if data is None:
            frame = doc_update_frame(
                fanout.room_id, doc_id, wire_bytes(update, codec.binary), sender, timestamp)
            data = encoded[codec] = codec.encode(frame)
        Hub.write(member, data)


async def stored_documents(directory: Any, room_id: str) -> dict[str, bytes]:
    """The stored documents of a room being activated (none where the directory
    keeps none, like the in-memory one)."""
    load = getattr(directory, "documents", None)
    if load is None:
        return {}
    stored: dict[str, bytes] = await load(room_id)
    return stored


def load_documents(docs: DocumentSet, stored: dict[str, bytes], room_id: str) -> None:
    """Stored states into a room's set; one that no longer decodes is logged and skipped."""
    for doc_id, state in stored.items():
        try:
            docs.load(doc_id, state)
        except ValueError:
            logger.error("stored document %s of room %s does not decode; skipped", doc_id, room_id)


class LocalDocuments:
    """The ``DocumentStore`` methods of a store whose loaded rooms (``self.rooms``)
    hold their documents in ``docs`` and merge updates in this process."""

    rooms: dict[str, Any]
    hub: Hub
    persistence: Any

    def _live(self, room_id: str) -> Any:
        raise NotImplementedError

    async def doc_sync(self, room_id: str, doc_id: str, state_vector: bytes) -> tuple[bytes, bytes]:
        docs: DocumentSet = self._live(room_id).docs
        return docs.sync(doc_id, state_vector)

    async def doc_update(self, room_id: str, player_id: str, doc_id: str, update: bytes) -> None:
        docs: DocumentSet = self._live(room_id).docs
        docs.apply(doc_id, update)
        relay_update(self.hub.get(room_id), doc_id, update, player_id)
        document_changed(self.persistence, room_id, doc_id)

    def doc_ids(self, room_id: str) -> list[str]:
        live = self.rooms.get(room_id)
        return live.docs.ids() if live is not None else []

    def persisted_document(self, room_id: str, doc_id: str) -> tuple[bytes, int] | None:
        live = self.rooms.get(room_id)
        return live.docs.encoded(doc_id) if live is not None else None

    async def clear_document(self, room_id: str, doc_id: str) -> bool:
        live = self.rooms.get(room_id)
        if live is None:
            return False
        cleared: bool = live.docs.clear(doc_id)
        if cleared:
            document_cleared(self.persistence, room_id, doc_id)
        return cleared
