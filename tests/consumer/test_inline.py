"""``SyncConsumer.on_frame``, the fast reader's handler, on a consumer without a socket:
a message run in the data callback answers refusals and crashes as the task does,
and one that waits after all finishes in the task, refusals included."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from sync.consumer import INLINE_WITH_STORE, SyncConsumer
from sync.core.changes import Author
from sync.core.codec import JSON
from sync.core.envelope import StateUpdate
from sync.core.errors import ErrorCode, ProtocolError
from sync.core.limits import Limits
from sync.ratelimit import TokenBucket
from sync.reader import resume


class Frames:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def write(self, data: bytes, binary: bool = False) -> None:
        self.sent.append(orjson.loads(data))


class Reader:
    def __init__(self) -> None:
        self.deferred: list[dict[str, Any]] = []

    def defer(self, message: dict[str, Any]) -> None:
        self.deferred.append(message)


def consumer_with(store: Any) -> SyncConsumer:
    consumer = SyncConsumer()
    consumer.bucket = TokenBucket(1000.0, 1000)
    consumer.inbound = consumer.codec = JSON
    consumer.runtime = SimpleNamespace(limits=Limits(), store=store)  # type: ignore[assignment]
    consumer.writer = Frames()  # type: ignore[assignment]
    consumer.reader = Reader()  # type: ignore[assignment]
    consumer.busy = False
    consumer.inline_types = INLINE_WITH_STORE
    consumer.room_id, consumer.closed_room = "r1", None
    consumer.player_id, consumer.session_token = "p1", None
    consumer.author = Author.player(player_id="p1")
    return consumer


def update(request_id: int, room_id: str = "r1") -> bytes:
    return orjson.dumps({"type": "STATE_UPDATE", "roomId": room_id, "requestId": request_id,
                         "payload": {"x": 1}})


class Store:
    """A store whose update refuses, crashes, or waits for ``gate``, by the patch."""

    def __init__(self) -> None:
        self.gate: asyncio.Future[None] | None = None
        self.done: list[int] = []
        self.then: str = "ok"

    async def update(self, room_id: str, player_id: str, message: StateUpdate, *,
                     by: Author) -> None:
        if self.gate is not None:
            await self.gate
        if self.then == "refuse":
            raise ProtocolError(ErrorCode.VERSION_CONFLICT, "no")
        if self.then == "crash":
            raise RuntimeError("boom")
        assert type(message.request_id) is int
        self.done.append(message.request_id)


def errors(consumer: SyncConsumer) -> list[tuple[str, Any, Any]]:
    sent = consumer.writer.sent  # type: ignore[attr-defined]
    return [(f["payload"]["code"], f.get("requestId"), f.get("roomId")) for f in sent]


def test_an_inline_update_runs_and_its_refusals_are_errors() -> None:
    store = Store()
    consumer = consumer_with(store)
    assert consumer.on_frame(update(1))
    assert store.done == [1]
    assert consumer.on_frame(update(2, room_id="r2"))  # refused before the store
    store.then = "refuse"
    assert consumer.on_frame(update(3))
    store.then = "crash"
    assert consumer.on_frame(update(4))
    assert errors(consumer) == [
        ("NOT_IN_ROOM", 2, "r2"), ("VERSION_CONFLICT", 3, "r1"), ("INTERNAL", 4, "r1")]
    assert consumer.reader.deferred == []  # type: ignore[union-attr]


@pytest.mark.parametrize("then", ["ok", "refuse", "crash"])
async def test_an_inline_update_that_waits_finishes_in_the_task(then: str) -> None:
    store = Store()
    store.gate = asyncio.get_running_loop().create_future()
    store.then = then
    consumer = consumer_with(store)
    assert consumer.on_frame(update(5))
    (deferred,) = consumer.reader.deferred  # type: ignore[union-attr]
    assert deferred["type"] == "kasagi.resume" and deferred["awaiting"] is store.gate
    task = asyncio.get_running_loop().create_task(
        resume(deferred["coro"], deferred["awaiting"]))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert not task.done() and store.done == [] and errors(consumer) == []
    store.gate.set_result(None)
    await task
    expected = {"ok": [], "refuse": [("VERSION_CONFLICT", 5, "r1")],
                "crash": [("INTERNAL", 5, "r1")]}[then]
    assert errors(consumer) == expected
    assert store.done == ([5] if then == "ok" else [])


def test_an_update_outside_ones_room_or_from_a_spectator_is_refused() -> None:
    store = Store()
    consumer = consumer_with(store)
    consumer.player_id = None
    assert consumer.on_frame(update(1))
    consumer.player_id, consumer.room_id, consumer.closed_room = "p1", None, "r1"
    assert consumer.on_frame(update(2))
    assert errors(consumer) == [("FORBIDDEN", 1, "r1"), ("ROOM_CLOSED", 2, "r1")]
    assert store.done == []
