"""Documents (PROTOCOL.md §16) on the Python client: a ``pycrdt`` Doc kept in sync
with one document of the client's room (``KasagiClient.doc``).

After every join and rejoin the client sends DOC_SYNC with the doc's state
vector; the answer brings what it lacks, and it sends back what the server
lacks. Local changes (any transaction on the doc) go out as DOC_UPDATE; the
other members' updates are applied as they come. An update made while the
socket is away is not queued: the next DOC_SYNC exchange carries it.

``pycrdt`` is the ``documents`` extra (``pip install kasagi-client[documents]``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pycrdt import Doc

    from .client import KasagiClient

logger = logging.getLogger(__name__)

EMPTY_UPDATE = b"\x00\x00"
DOC_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_doc_id(doc_id: object) -> str:
    """A docId the server accepts, or ValueError before anything is sent."""
    if not isinstance(doc_id, str) or not DOC_ID.fullmatch(doc_id):
        raise ValueError(f"bad docId {doc_id!r}: [A-Za-z0-9_.-]{{1,64}}")
    return doc_id


@dataclass(frozen=True, slots=True)
class DocMessage:
    """DOC_SYNC (the answer to ours) or DOC_UPDATE (another member's) of a document."""

    room_id: str
    doc_id: str
    update: bytes
    #: the server's state vector (DOC_SYNC), None on DOC_UPDATE
    state_vector: bytes | None = None
    sender: str | None = None
    request_id: str | int | None = None


def binary(value: Any) -> bytes | None:
    """A binary field as received: bytes (MessagePack, bin1) or standard base64 (JSON)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


class SyncedDoc:
    """One document of the room and the pycrdt ``Doc`` that mirrors it."""

    def __init__(self, client: KasagiClient, doc_id: str) -> None:
        from pycrdt import Doc  # the ``documents`` extra: imported when first used

        self.client = client
        self.doc_id = doc_id
        self.doc: Doc = Doc()
        self.synced = asyncio.Event()
        self._applying = False
        self._subscription = self.doc.observe(self._on_transaction)

    def _on_transaction(self, event: Any) -> None:
        if self._applying:
            return  # what we received: not sent back
        update = bytes(event.update)
        if update != EMPTY_UPDATE:
            self.client._spawn(self._send("DOC_UPDATE", {"update": update}))

    async def sync(self) -> None:
        """DOC_SYNC with our state vector (the client does it after every join)."""
        await self._send("DOC_SYNC", {"stateVector": self.doc.get_state()})

    async def _send(self, type_: str, fields: dict[str, bytes]) -> None:
        payload: dict[str, Any] = {"docId": self.doc_id}
        for name, data in fields.items():
            payload[name] = data if self.client._binary_fields else (
                base64.b64encode(data).decode("ascii"))
        room = self.client._joined_room()
        if room is None:
            return
        try:
            await self.client._send({"type": type_, "roomId": room, "payload": payload},
                                    ready=True)
        except Exception as exc:  # not connected: the next DOC_SYNC repairs it
            logger.debug("document %s: %s not sent (%s)", self.doc_id, type_, exc)

    def receive(self, message: DocMessage) -> None:
        self._applying = True
        try:
            self.doc.apply_update(message.update)
        except ValueError:
            logger.warning("document %s: an update from the server does not decode",
                           self.doc_id)
            return
        finally:
            self._applying = False
        if message.state_vector is not None:
            missing = self.doc.get_update(message.state_vector)
            if missing != EMPTY_UPDATE:
                self.client._spawn(self._send("DOC_UPDATE", {"update": missing}))
            self.synced.set()
