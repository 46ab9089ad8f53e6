"""sync.compat's version check: known versions take the fast path, unknown ones fall back.

daphne's objects are real (a ``Server``, the ``WebSocketProtocol`` its factory
builds, the ``functools.partial`` of ``Server.handle_reply`` it hands the app
as ``send``); the protocol is connected to Twisted's ``StringTransport``, so
it is not a plain TCP socket and the writer buffers through Twisted. Only the
version the check reads is changed, to one no release has.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from autobahn.websocket.xormasker import create_xor_masker
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory
from twisted.internet.testing import StringTransport

from sync import compat
from sync.compat import (
    KNOWN_GOOD,
    DaphneFrameReader,
    DaphneFrameWriter,
    daphne_protocol,
    framed,
    unmask,
)
from sync.metrics import METRICS
from sync.reader import reader_for, resume
from sync.writer import FrameWriter, writer_for

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"


@pytest.fixture(autouse=True)
def fresh_checks() -> Iterator[None]:
    compat.forget_checks()
    yield
    compat.forget_checks()


@pytest.fixture
def daphne_send() -> Any:
    server = Server(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    protocol = WebSocketFactory(server, server="Daphne").buildProtocol(None)
    protocol.makeConnection(StringTransport())
    return functools.partial(server.handle_reply, protocol)


def unknown(distribution: str, monkeypatch: pytest.MonkeyPatch, version: str = "99.0") -> None:
    real = compat.installed_version
    monkeypatch.setattr(
        compat, "installed_version", lambda name: version if name == distribution else real(name))


def test_known_good_versions_are_the_pinned_ones() -> None:
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", REQUIREMENTS.read_text(), re.M))
    for name, versions in KNOWN_GOOD.items():
        assert pins[name] in versions, f"{name}=={pins[name]} is pinned but not known-good"
    assert compat.unknown_versions(KNOWN_GOOD) == []  # this environment is the pinned one


def test_daphne_of_known_versions_gets_the_fast_writer(daphne_send: Any, caplog) -> None:
    before = METRICS.writer_connections["daphne_buffered"]
    writer = writer_for(daphne_send)
    assert isinstance(writer, DaphneFrameWriter)
    assert writer.direct is False  # a StringTransport is not Twisted's TCP connection
    assert METRICS.writer_connections["daphne_buffered"] == before + 1
    assert not [r for r in caplog.records if r.name == "sync.compat"]


def opened(protocol: Any) -> None:
    """What a handshake sets that the reader reads (tests/e2e/test_fast_reader.py does
    the real thing): autobahn's parser state and daphne's queue."""
    protocol.current_frame, protocol.inside_message = None, False
    protocol.last_ping, protocol.application_queue = 0.0, object()


def test_daphne_of_known_versions_gets_the_fast_reader(daphne_send: Any) -> None:
    protocol = daphne_send.args[0]
    before = dict(METRICS.reader_connections)
    assert reader_for(daphne_send, lambda frame: True) is None  # not open yet: no parser state
    opened(protocol)
    reader = reader_for(daphne_send, lambda frame: True)
    assert isinstance(reader, DaphneFrameReader)
    assert protocol.dataReceived == reader.data_received  # on this instance only
    assert protocol.onMessage == reader.on_message
    assert type(protocol).dataReceived is not reader.data_received
    assert reader.direct is False  # a StringTransport: Twisted keeps reading it
    assert METRICS.reader_connections["daphne_reactor"] == before["daphne_reactor"] + 1
    assert METRICS.reader_connections["generic"] == before["generic"] + 1


def test_an_unknown_autobahn_gets_no_fast_reader(
    daphne_send: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown("autobahn", monkeypatch)
    opened(daphne_send.args[0])
    before = METRICS.reader_connections["generic"]
    assert reader_for(daphne_send, lambda frame: True) is None
    assert METRICS.reader_connections["generic"] == before + 1
    assert "dataReceived" not in vars(daphne_send.args[0])


async def test_resume_finishes_a_coroutine_begun_outside_any_task() -> None:
    """What the consumer does when a message it began in the data callback waits after all."""
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[int] = loop.create_future()
    seen: list[object] = []

    async def handler() -> None:
        seen.append(await gate)
        await asyncio.sleep(0)  # a bare yield, too
        seen.append(asyncio.current_task() is not None)

    coro = handler()
    awaiting = coro.send(None)  # the first step, as in the data callback
    assert awaiting is gate
    task = loop.create_task(resume(coro, awaiting))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert not task.done()
    gate.set_result(7)
    await task
    assert seen == [7, True]

    blocked: asyncio.Future[None] = loop.create_future()
    cancelled: list[bool] = []

    async def waits() -> None:
        try:
            await blocked
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    coro = waits()
    task = loop.create_task(resume(coro, coro.send(None)))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == [True]


@pytest.mark.parametrize("library", ["daphne", "Twisted", "autobahn"])
def test_an_unknown_version_falls_back_with_one_warning(
    library: str, daphne_send: Any, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    unknown(library, monkeypatch)
    before = METRICS.writer_connections["generic"]
    with caplog.at_level(logging.WARNING, logger="sync.compat"):
        assert daphne_protocol(daphne_send) is None
        writers = [writer_for(daphne_send), writer_for(daphne_send)]
    assert all(isinstance(writer, FrameWriter) for writer in writers)
    assert METRICS.writer_connections["generic"] == before + 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "sync.compat"]
    assert len(warnings) == 1, warnings
    assert f"{library} 99.0" in warnings[0] and "generic" in warnings[0]


def test_a_library_that_is_not_installed_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    unknown("autobahn", monkeypatch, version=None)  # type: ignore[arg-type]
    assert compat.unknown_versions(["autobahn", "daphne"]) == [("autobahn", None)]
    assert compat.fast_path_allowed() is False


def test_a_daphne_send_of_another_shape_falls_back_with_a_warning(caplog) -> None:
    server = Server(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    with caplog.at_level(logging.WARNING, logger="sync.compat"):
        writer = writer_for(functools.partial(server.handle_reply))  # no protocol argument
        writer_for(server.handle_reply)
    assert isinstance(writer, FrameWriter)
    warnings = [r.getMessage() for r in caplog.records if r.name == "sync.compat"]
    assert len(warnings) == 1 and "shape" in warnings[0], warnings


async def test_another_server_gets_the_generic_writer_silently(caplog) -> None:
    async def send(message: dict[str, Any]) -> None:
        pass

    assert isinstance(writer_for(send), FrameWriter)
    assert not [r for r in caplog.records if r.name == "sync.compat"]


async def test_the_asgiref_thread_check_reads_the_threadlocal_of_known_versions() -> None:
    assert compat.in_sync_to_async_thread() is False  # the loop's own thread
    assert await sync_to_async(compat.in_sync_to_async_thread)() is True


async def test_an_unknown_asgiref_is_not_read(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    unknown("asgiref", monkeypatch, version="4.0.0")
    with caplog.at_level(logging.WARNING, logger="sync.compat"):
        assert await sync_to_async(compat.in_sync_to_async_thread)() is False
        assert await sync_to_async(compat.in_sync_to_async_thread)() is False
    warnings = [r.getMessage() for r in caplog.records if r.name == "sync.compat"]
    assert len(warnings) == 1 and "asgiref 4.0.0" in warnings[0], warnings


@pytest.mark.parametrize(
    ("length", "header"),
    [(0, b"\x81\x00"), (125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"),
     (65535, b"\x81\x7e\xff\xff"), (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00")],
)
def test_frames_are_rfc6455_server_frames(length: int, header: bytes) -> None:
    data = b"a" * length
    assert framed(data, False) == header + data
    assert framed(data, True)[:1] == b"\x82"


def test_a_payload_is_framed_once_while_others_interleave() -> None:
    """A tick of a world room writes ~100 payloads to members in no order by payload:
    each is framed once, and a repeat is the very same frame object."""
    payloads = [os.urandom(200) for _ in range(50)]
    first = [framed(p, True) for p in payloads]
    again = [framed(p, True) for p in reversed(payloads)]
    assert all(a is b for a, b in zip(first, reversed(again), strict=True))
    assert framed(payloads[0], False)[:1] == b"\x81"  # another opcode: framed anew
    assert framed(payloads[0], True, compressed=True)[:1] == b"\xc2"


def test_the_frame_cache_is_bounded() -> None:
    big = b"b" * (compat.FRAMED_CACHE_BYTES // 3)
    kept = framed(big, True)
    for _ in range(3):
        framed(b"c" * (compat.FRAMED_CACHE_BYTES // 3), True)
    assert compat._framed_bytes <= compat.FRAMED_CACHE_BYTES
    assert framed(big, True) == kept  # dropped and framed again, the same bytes


def test_unmask_is_autobahns_xor() -> None:
    for n in (0, 1, 3, 4, 5, 63, 125, 126, 300, 65_535, 70_001):
        payload, mask = os.urandom(n), os.urandom(4)
        expected = create_xor_masker(mask, n).process(payload) if n else b""
        assert unmask(payload, mask) == expected
