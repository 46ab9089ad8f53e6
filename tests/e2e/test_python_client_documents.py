"""The Python SDK's documents (§16): ``client.doc(doc_id)`` is a pycrdt Doc kept in sync,
on every codec, across a reconnect, and it interoperates with a raw peer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kasagi_client import connect
from pycrdt import Text

from tests.e2e.test_documents import edit, raw, send_update, sync, text_doc, text_of
from tests.wsclient import Conn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def until(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("encoding", ["json", "msgpack", "bin1"])
async def test_client_doc_is_a_pycrdt_doc_kept_in_sync(kasagi_server, room_id, encoding):
    raw_peer = await Conn.open(kasagi_server.ws_url)
    await raw_peer.join(room_id, playerName="raw")
    peer_doc = text_doc()
    await send_update(raw_peer, room_id, edit(peer_doc, 0, "from raw"))
    async with connect(kasagi_server.ws_url, encoding=encoding) as bot:
        await bot.join(room_id, {"playerName": "bot"})
        doc = await bot.doc_synced("note")
        text = doc.get("note", type=Text)
        assert str(text) == "from raw"  # the first sync brought the document
        assert bot.doc("note") is doc
        text.insert(len(str(text)), " + bot")  # a local edit goes out as DOC_UPDATE
        relayed = await raw_peer.expect("DOC_UPDATE")
        peer_doc.apply_update(raw(relayed["payload"]["update"]))
        assert text_of(peer_doc) == "from raw + bot"
        await send_update(raw_peer, room_id, edit(peer_doc, 0, ">"))  # and remote ones come in
        await until(lambda: str(text) == ">from raw + bot", "the raw peer's edit")
        while True:  # drain what is left: nothing was echoed back
            try:
                await raw_peer.recv(0.3)
            except TimeoutError:
                break
        assert [f["type"] for f in raw_peer.seen].count("DOC_UPDATE") == 1
    check = text_doc()
    await sync(raw_peer, room_id, check)
    assert text_of(check) == ">from raw + bot"


async def test_two_bots_converge_and_a_late_one_gets_everything(kasagi_server, room_id):
    async with connect(kasagi_server.ws_url) as one, \
            connect(kasagi_server.ws_url, encoding="msgpack") as two:
        await one.join(room_id, {"playerName": "one"})
        await two.join(room_id, {"playerName": "two"})
        text_one = (await one.doc_synced("board")).get("t", type=Text)
        text_two = (await two.doc_synced("board")).get("t", type=Text)
        for n in range(20):
            text_one.insert(0, "a")
            text_two.insert(len(str(text_two)), "b")
            if n % 5 == 0:
                await asyncio.sleep(0.01)
        await until(lambda: str(text_one) == str(text_two) and len(str(text_one)) == 40,
                    "both bots converge")
        assert sorted(str(text_one)) == sorted("a" * 20 + "b" * 20)
        async with connect(kasagi_server.ws_url) as late:
            await late.join(room_id, {"playerName": "late"})
            late_text = (await late.doc_synced("board")).get("t", type=Text)
            assert str(late_text) == str(text_one)
