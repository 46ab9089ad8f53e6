"""Interop (§16) with the real ``yjs`` npm package: Node peers (clients/js-yjs/peer.mjs)
and a pycrdt peer edit one document at once against a real daphne; everyone
converges, a late joiner gets the whole document, garbage is refused."""

from __future__ import annotations

import asyncio
import base64
import random
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from pycrdt import Doc, Text
from websockets.exceptions import ConnectionClosed

from tests.services import REQUIRE_SERVICES
from tests.wsclient import Conn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "js-yjs"


def need_yjs() -> str:
    node = shutil.which("node")
    if node is None or not (PACKAGE / "node_modules" / "yjs").is_dir():
        reason = f"node and `npm ci` in {PACKAGE} are needed (make test runs it)"
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    return node


class PycrdtPeer:
    """A pycrdt document on a raw connection: applies every relayed update."""

    def __init__(self, conn: Conn, room_id: str) -> None:
        self.conn, self.room_id = conn, room_id
        self.doc: Doc = Doc()
        self.text = self.doc.get("note", type=Text)
        self.answers: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self._read())
        self.numbers = 0
        #: DOC_UPDATE frames received, and updates sent
        self.received = self.sent = 0

    async def _read(self) -> None:
        while True:
            try:
                frame = await self.conn.recv(timeout=60)
            except (ConnectionClosed, TimeoutError):
                return  # the server stopped (a restart test) or the test is over
            if frame["type"] == "DOC_UPDATE":
                self.received += 1
            if frame["type"] in ("DOC_UPDATE", "DOC_SYNC"):
                self.doc.apply_update(base64.b64decode(frame["payload"]["update"]))
            if frame["type"] == "DOC_SYNC":
                vector = base64.b64decode(frame["payload"]["stateVector"])
                missing = self.doc.get_update(vector)
                if missing != b"\x00\x00":
                    await self.send_update(missing)
            waiting = self.answers.pop(frame.get("requestId"), None)
            if waiting is not None:
                waiting.set_result(frame)

    async def request(self, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.numbers += 1
        request_id = f"py-{self.numbers}"
        self.answers[request_id] = asyncio.get_running_loop().create_future()
        await self.conn.send({"type": type_, "roomId": self.room_id, "requestId": request_id,
                              "payload": payload})
        return await asyncio.wait_for(self.answers[request_id], 30)

    async def send_update(self, update: bytes) -> None:
        await self.conn.send({"type": "DOC_UPDATE", "roomId": self.room_id, "payload": {
            "docId": "note", "update": base64.b64encode(update).decode()}})

    async def sync(self) -> None:
        vector = base64.b64encode(self.doc.get_state()).decode()
        await self.request("DOC_SYNC", {"docId": "note", "stateVector": vector})

    async def edit(self, rng: random.Random) -> None:
        before = self.doc.get_state()
        length = len(self.text)
        if length and rng.random() < 0.3:
            at = rng.randrange(length)
            del self.text[at:min(length, at + rng.randint(1, 3))]
        else:
            self.text.insert(rng.randint(0, length), "p" * rng.randint(1, 3))
        await self.send_update(self.doc.get_update(before))
        self.sent += 1


async def test_yjs_and_pycrdt_peers_converge(start_server, room_id):
    node = need_yjs()
    server = start_server(KASAGI_RATE_LIMIT="10000", KASAGI_RATE_BURST="10000")
    conn = await Conn.open(server.ws_url)
    await conn.join(room_id, playerName="python")
    py = PycrdtPeer(conn, room_id)
    await py.sync()
    proc = await asyncio.create_subprocess_exec(
        node, str(PACKAGE / "peer.mjs"), server.ws_url, room_id, "3", "150", "7",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        rng = random.Random(11)
        for n in range(150):  # edits while the yjs peers edit
            await py.edit(rng)
            if n % 10 == 0:
                await asyncio.sleep(0.001)
        await py.request("PING", {})
        edited = orjson.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert edited == {"event": "edited"}
        proc.stdin.write(b"sync\n")
        await proc.stdin.drain()
        for _ in range(2):
            await py.sync()
            await py.request("PING", {})
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, (await proc.stderr.read()).decode()  # type: ignore[union-attr]
        result = orjson.loads(line)
        await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
    text = str(py.text)
    assert len(text) > 50
    assert result["texts"] == [text, text, text]  # every peer holds the same document
    assert set(text) <= set("abcp")
    assert result["late"] == text  # a late joiner gets the whole document
    assert result["docs"] == ["note"]
    assert result["garbage"] == "INVALID_UPDATE" and result["badBase64"] == "BAD_MESSAGE"
    assert result["errors"] == []
    # yjs's v1 encoding of the whole document reads the same in pycrdt
    mirror: Doc = Doc()
    mirror.apply_update(base64.b64decode(result["v1"]))
    assert str(mirror.get("note", type=Text)) == text
    await py.sync()
    assert str(py.text) == text  # the garbage changed nothing
    py.reader.cancel()
