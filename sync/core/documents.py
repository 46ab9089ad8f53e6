"""Documents (PROTOCOL.md §16): a room's Yjs CRDTs, held as ``pycrdt`` docs.

Pure core: no Django, no asyncio, no Redis. It decodes the binary fields of
DOC_SYNC / DOC_UPDATE (standard padded base64 in JSON, raw bytes in
MessagePack), and :class:`DocumentSet` holds one room's documents: it answers
a state vector with what the client lacks, and merges an update only when it
decodes as a Yjs v1 update and keeps the document's encoded state within the
room state limit — a refused update changes nothing. Stores feed it and carry
out what it returns (relay, persist); it never sends or writes anything.

``pycrdt`` docs are not shared across threads: a set is only touched on the
event loop, and the persistence writer gets the encoded bytes.
"""

from __future__ import annotations

import binascii
import itertools
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Text

from .errors import ErrorCode, ProtocolError

#: an empty document's Yjs state vector (v1)
EMPTY_STATE_VECTOR = b"\x00"
#: an empty Yjs v1 update
EMPTY_UPDATE = b"\x00\x00"
#: how much an update may grow a document's encoded state, at most, per byte of the
#: update: the cheap bound that spares a full re-encoding far from the limit
GROWTH_FACTOR = 2
GROWTH_SLACK = 64
#: revisions are unique in the process: a document cleared and made again never
#: repeats a revision its predecessor was saved at
_revisions = itertools.count(1)


def binary_field(payload: dict[str, Any], name: str, *, required: bool = True) -> bytes:
    """A binary payload field: raw bytes (MessagePack) or standard padded base64 (JSON).

    Anything else — a number, unpadded or URL-safe base64, stray characters — is
    BAD_MESSAGE: the field has the wrong shape. Whether the bytes are a Yjs
    update is for :meth:`DocumentSet.apply` to say (INVALID_UPDATE).
    """
    value = payload.get(name)
    if value is None:
        if required:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{name} is required")
        return b""
    if type(value) is bytes:
        return value
    if type(value) is not str:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{name} must be base64 (or bytes)")
    try:
        return binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, f"{name} is not standard padded base64") from exc


def to_base64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def wire_bytes(data: bytes, binary: bool) -> bytes | str:
    """``data`` as a frame of that codec carries it: bytes in MessagePack, base64 in JSON."""
    return data if binary else to_base64(data)


@dataclass(slots=True)
class Document:
    """One document and what its owner needs to know about it."""

    doc: Doc = field(default_factory=Doc)
    #: changes with every merged update (the persistence writer's "is it dirty"),
    #: unique in the process
    revision: int = 0
    #: the encoded state's size when last measured, and the bound on what was added since
    measured: int = 0
    added: int = 0


class DocumentSet:
    """The documents of one room, by docId; a document exists once it has an update."""

    __slots__ = ("docs", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.docs: dict[str, Document] = {}

    def ids(self) -> list[str]:
        """The room's documents, for FULL_STATE's ``payload.docs``."""
        return sorted(self.docs)

    def sync(self, doc_id: str, state_vector: bytes) -> tuple[bytes, bytes]:
        """(every part of the document the vector lacks, the server's vector).

        An unknown document answers as an empty one (and is not created). A vector
        that does not decode is BAD_MESSAGE.
        """
        entry = self.docs.get(doc_id)
        if entry is None:
            return EMPTY_UPDATE, EMPTY_STATE_VECTOR
        try:
            update = entry.doc.get_update(state_vector or EMPTY_STATE_VECTOR)
        except ValueError as exc:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, "stateVector is not a Yjs state vector") from exc
        return update, entry.doc.get_state()

    def apply(self, doc_id: str, update: bytes) -> None:
        """Merge a client's update, or raise INVALID_UPDATE / PAYLOAD_TOO_LARGE with
        nothing changed."""
        entry = self.docs.get(doc_id)
        fresh = entry is None
        if entry is None:
            entry = Document()
        bound = entry.measured + entry.added + GROWTH_FACTOR * len(update) + GROWTH_SLACK
        if bound > self.max_bytes:
            self._check_size(doc_id, entry, update)
        try:
            entry.doc.apply_update(update)
        except ValueError as exc:
            raise ProtocolError(
                ErrorCode.INVALID_UPDATE, "update is not a Yjs v1 update") from exc
        if fresh:
            self.docs[doc_id] = entry
        if bound > self.max_bytes:
            entry.added = 0  # measured just now, in _check_size
        else:
            entry.added += GROWTH_FACTOR * len(update) + GROWTH_SLACK
        entry.revision = next(_revisions)

    def _check_size(self, doc_id: str, entry: Document, update: bytes) -> None:
        """Near the limit: merge into a copy and measure it exactly."""
        trial: Doc = Doc()
        try:
            trial.apply_update(entry.doc.get_update())
            trial.apply_update(update)
        except ValueError as exc:
            raise ProtocolError(
                ErrorCode.INVALID_UPDATE, "update is not a Yjs v1 update") from exc
        size = len(trial.get_update())
        if size > self.max_bytes:
            raise ProtocolError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"document {doc_id} would exceed {self.max_bytes} bytes",
            )
        entry.measured = size

    def merge(self, doc_id: str, update: bytes) -> None:
        """An update another process already accepted (the Redis log): merged without
        the size check, which its process made; ValueError if it does not decode."""
        entry = self.docs.get(doc_id)
        if entry is None:
            entry = Document()
            entry.doc.apply_update(update)
            self.docs[doc_id] = entry
        else:
            entry.doc.apply_update(update)
        entry.added += GROWTH_FACTOR * len(update) + GROWTH_SLACK
        entry.revision = next(_revisions)

    def revision(self, doc_id: str) -> int | None:
        entry = self.docs.get(doc_id)
        return entry.revision if entry is not None else None

    def load(self, doc_id: str, state: bytes) -> None:
        """A document's stored state (at activation), merged into what is held."""
        entry = self.docs.setdefault(doc_id, Document())
        entry.doc.apply_update(state)
        entry.measured = len(entry.doc.get_update())
        entry.added = 0

    def encoded(self, doc_id: str) -> tuple[bytes, int] | None:
        """(the document's whole state as one update, its revision), None if absent.

        The one compaction: whatever the number of updates merged, this is the
        merged document, and its size refreshes the size bound.
        """
        entry = self.docs.get(doc_id)
        if entry is None:
            return None
        state = entry.doc.get_update()
        entry.measured, entry.added = len(state), 0
        return state, entry.revision

    def clear(self, doc_id: str) -> bool:
        """Forget a document (staff's "clear"); True if it existed."""
        return self.docs.pop(doc_id, None) is not None


def text_roots(state: bytes, limit: int = 200) -> dict[str, str]:
    """The text of a document's root types that read as Y.Text (the admin's preview),
    each cut to ``limit`` characters. A root read as text that holds none (a map, an
    array, an empty text: an update does not say a root's type) is left out."""
    doc: Doc = Doc()
    doc.apply_update(state)
    previews: dict[str, str] = {}
    for name in list(doc.keys()):
        try:
            text = str(doc.get(name, type=Text))
        except Exception:  # a map or an array root: not text
            continue
        if text:
            previews[name] = text[:limit]
    return previews
