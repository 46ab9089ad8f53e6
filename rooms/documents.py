"""Documents (§16) in the database: what the background writer stores, what the
admin reads, and clearing one.

The loop side (``rooms.persistence.DatabasePersistence``) takes a dirty
document's merged state from the store (``persisted_document``: one encoding,
the compaction) at most once per snapshot interval; the writer thread stores
it in the document's one row (``RoomDocument``), replacing the previous state.
Storage therefore follows the document's size, never the number of updates.
Nothing here runs on a message's path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from sync.core.documents import text_roots

from .models import Room, RoomDocument

logger = logging.getLogger(__name__)

#: (room id, doc id) → (encoded state, revision), or None (not loaded here)
DocumentReader = Callable[[str, str], "tuple[bytes, int] | None"]
DocKey = tuple[str, str]


def no_document(room_id: str, doc_id: str) -> tuple[bytes, int] | None:
    return None


@dataclass(slots=True)
class DocumentWrite:
    """A document's whole state to store (None: delete its row)."""

    room_id: str
    doc_id: str
    state: bytes | None
    taken_at: datetime


def take_documents(
    keys: Iterable[DocKey], read: DocumentReader, taken: dict[DocKey, int],
) -> list[DocumentWrite]:
    """The writes for the dirty documents whose revision changed since last taken
    (on the loop: ``read`` encodes the pycrdt doc there)."""
    now = timezone.now()
    writes = []
    for key in keys:
        state = read(*key)
        if state is None or taken.get(key) == state[1]:
            continue
        taken[key] = state[1]
        writes.append(DocumentWrite(key[0], key[1], state[0], now))
    return writes


def write_documents(writes: Iterable[DocumentWrite], pks: dict[str, int]) -> None:
    """Store (or delete) each document's row, in the writer's transaction."""
    for write in writes:
        room_pk = pks.get(write.room_id)
        if room_pk is None:
            logger.warning("no row for room %s; document %s not stored",
                           write.room_id, write.doc_id)
            continue
        if write.state is None:
            RoomDocument.objects.filter(room_id=room_pk, doc_id=write.doc_id).delete()
            continue
        RoomDocument.objects.update_or_create(
            room_id=room_pk, doc_id=write.doc_id,
            defaults={"state": write.state, "size": len(write.state)},
        )


def stored_documents(room_id: str) -> dict[str, bytes]:
    """A room's stored documents (the directory reads them at activation)."""
    rows = RoomDocument.objects.filter(room__room_id=room_id).values_list("doc_id", "state")
    return {doc_id: bytes(state) for doc_id, state in rows}


# -- the admin ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    doc_id: str
    size: int
    updated_at: datetime
    #: root name → start of its text, for the roots that read as Y.Text
    preview: dict[str, str]


def room_documents(room: Room, *, preview_chars: int = 200) -> list[DocumentInfo]:
    """The stored documents of a room with their size and a text preview."""
    infos = []
    for row in RoomDocument.objects.filter(room=room).order_by("doc_id"):
        try:
            preview = text_roots(bytes(row.state), preview_chars)
        except ValueError:
            preview = {}
        infos.append(DocumentInfo(row.doc_id, row.size, row.updated_at, preview))
    return infos


def document_clear(*, room: Room, doc_id: str) -> bool:
    """Delete a document's stored row (the live copy is cleared by the store)."""
    deleted, _ = RoomDocument.objects.filter(room=room, doc_id=doc_id).delete()
    return deleted > 0
