"""End-to-end tests of the Python client SDK against a live Kasagi server (``kasagi_server``).

Nothing is mocked: every test talks to a real daphne. Some tests put a small
WebSocket relay between the client and the server, to lose or repeat a frame
(gap and duplicate handling, PROTOCOL.md §6) or to cut the TCP connections
without a close handshake (resume after a drop, recovery by version §14).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any, TypeVar

import orjson
import pytest
import pytest_asyncio
from kasagi_client import (
    AlreadyInRoom,
    Backoff,
    ClientClosed,
    Closed,
    Delta,
    Disconnected,
    Error,
    Forbidden,
    FullState,
    KasagiClient,
    NotConnected,
    PlayerJoined,
    PlayerLeft,
    Pong,
    Reconnected,
    Reconnecting,
    Resumed,
    RoomEvent,
    VersionConflict,
    connect,
)
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

E = TypeVar("E")
ON_REDIS = os.environ.get("KASAGI_TEST_SERVER_REDIS") == "1"
ClientFactory = Callable[..., Awaitable[KasagiClient]]


def new_room(prefix: str) -> str:
    return f"pyc-{prefix}-{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture
async def clients(kasagi_server: Any) -> AsyncIterator[ClientFactory]:
    """Open clients on the live server (or on ``url``); all are closed after the test."""
    opened: list[KasagiClient] = []

    async def open_client(url: str | None = None, **options: Any) -> KasagiClient:
        client = await connect(url or kasagi_server.ws_url, **options)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.close()


async def next_of(
    client: KasagiClient,
    kind: type[E],
    where: Callable[[E], bool] = lambda _: True,
    timeout: float = 5.0,
) -> E:
    """The next event of ``kind`` matching ``where``; other events are skipped."""
    async with asyncio.timeout(timeout):
        while True:
            event = await client.next_event()
            if isinstance(event, kind) and where(event):
                return event


# --- join, update, mirror -------------------------------------------------------------------------


async def test_mirror_equals_a_fresh_joiners_full_state(clients: ClientFactory) -> None:
    room = new_room("mirror")
    a = await clients()
    joined = await a.join(room, playerName="A", x=1)

    assert isinstance(joined, FullState)
    assert joined.room_id == room
    assert a.player_id == joined.player_id is not None
    assert a.session_token
    assert a.me == {"playerName": "A", "x": 1}
    assert a.version == joined.version

    result = await a.update(x=5, y=7, wait=True)
    assert result.confirmed
    assert result.version == a.version == joined.version + 1
    assert a.me == {"playerName": "A", "x": 5, "y": 7}

    for step in range(10):  # fire-and-forget fast path
        await a.update(x=step)
    await a.update(y=None, wait=True)  # deleting a field is a merge patch with null
    await a.update_entity("doc-1", {"text": "hello", "meta": {"lang": "en"}}, wait=True)
    await a.update_entity("doc-1", meta={"lang": None}, wait=True)

    b = await clients()
    fresh = await b.join(room, playerName="B")
    await a.wait_for_version(fresh.version, timeout=5)

    assert a.version == fresh.version
    assert a.state == fresh.state
    assert fresh.state["players"][a.player_id] == {"playerName": "A", "x": 9}
    assert fresh.state["entities"]["doc-1"] == {"text": "hello", "meta": {}}
    assert a.stats.gaps == 0
    assert a.stats.stale == 0


async def test_msgpack_client_mirrors_the_same_room_as_a_json_client(
    clients: ClientFactory,
) -> None:
    room = new_room("msgpack")
    packed = await clients(encoding="msgpack")
    plain = await clients(encoding="json")
    await packed.join(room, playerName="M", x=1)
    await plain.join(room, playerName="J")
    assert packed.binary and not plain.binary

    await packed.update(x=2, pos=[1.5, -3], wait=True)
    await plain.update_entity("flag", {"owner": plain.player_id}, wait=True)
    with pytest.raises(VersionConflict):  # typed errors arrive over MessagePack too
        await packed.update(x=3, expected_version=0, wait=True)
    await plain.wait_for_version(packed.version, timeout=5)
    await packed.wait_for_version(plain.version, timeout=5)

    assert packed.state == plain.state
    assert packed.state["players"][packed.player_id] == {"playerName": "M", "x": 2,
                                                          "pos": [1.5, -3]}
    assert packed.stats.gaps == 0 and packed.stats.malformed == 0


async def test_noop_update_is_confirmed_at_the_current_version(clients: ClientFactory) -> None:
    a = await clients()
    await a.join(new_room("noop"), x=3)
    before = a.version

    result = await a.update(x=3, wait=True)

    assert result.version == before  # no new version for a no-op (§5)
    await a.ping()
    assert a.version == before


async def test_two_clients_see_each_other(clients: ClientFactory) -> None:
    room = new_room("pair")
    a = await clients()
    b = await clients()
    await a.join(room, playerName="A")
    b_full = await b.join(room, playerName="B")

    joined = await next_of(a, PlayerJoined, lambda e: e.player_id == b.player_id)
    assert joined.state == {"playerName": "B"}
    assert joined.version == joined.base_version + 1 == b_full.version
    assert a.player_id in b_full.state["players"]

    moved = await b.update(x=30, y=40, wait=True)
    assert moved.version is not None
    delta = await next_of(a, Delta, lambda e: e.version >= moved.version)
    assert delta.patch["players"][b.player_id]["x"] == 30
    assert a.state is not None
    assert a.state["players"][b.player_id] == {"playerName": "B", "x": 30, "y": 40}

    b_id = b.player_id
    await b.leave()
    assert b.room_id is None
    assert b.state is None
    assert b.session_token is None
    left = await next_of(a, PlayerLeft)
    assert (left.player_id, left.reason) == (b_id, "left")
    assert b_id not in a.state["players"]


async def test_ping_measures_a_round_trip(clients: ClientFactory) -> None:
    a = await clients()
    outside_room = await a.ping()  # PING needs no room
    await a.join(new_room("ping"))
    rtt = await a.ping()

    assert 0 < outside_room < 5
    assert 0 < rtt < 5
    pongs = [e for e in a.poll_events() if isinstance(e, Pong)]
    assert len(pongs) == 2
    assert pongs[-1].rtt == rtt
    assert pongs[-1].server_time is not None
    assert pongs[-1].server_time > 1_600_000_000_000


# --- typed errors ---------------------------------------------------------------------------------


async def test_spectator_update_raises_forbidden(clients: ClientFactory) -> None:
    room = new_room("spectate")
    player = await clients()
    await player.join(room, playerName="P")
    watcher = await clients()
    view = await watcher.join(room, spectate=True)

    assert view.player_id is None
    assert watcher.session_token is None
    assert list(view.state["players"]) == [player.player_id]

    with pytest.raises(Forbidden) as refused:
        await watcher.update(x=1, wait=True)
    assert refused.value.code == "FORBIDDEN"
    assert refused.value.request_id is not None

    # Fire-and-forget: the refusal arrives as an Error event instead.
    await watcher.update(x=2)
    error = await next_of(watcher, Error)
    assert error.code == "FORBIDDEN"
    assert isinstance(error.exception(), Forbidden)

    # A spectator still follows every change.
    moved = await player.update(x=11, wait=True)
    assert moved.version is not None
    await watcher.wait_for_version(moved.version, timeout=5)
    assert watcher.state == player.state


async def test_expected_version_conflict_raises_version_conflict(clients: ClientFactory) -> None:
    a = await clients()
    await a.join(new_room("cas"), x=0)
    seen = a.version
    assert seen is not None
    first = await a.update(x=1, expected_version=seen, wait=True)
    assert first.version == seen + 1

    with pytest.raises(VersionConflict) as conflict:
        await a.update(x=2, expected_version=seen, wait=True)

    assert conflict.value.current_version == a.version == seen + 1
    assert a.me is not None
    assert a.me["x"] == 1
    await a.ping()
    assert a.version == seen + 1  # a refused update changes nothing


async def test_second_join_raises_already_in_room_and_keeps_the_first(
    clients: ClientFactory,
) -> None:
    room = new_room("twice")
    a = await clients()
    await a.join(room)

    with pytest.raises(AlreadyInRoom):
        await a.join(new_room("other"))

    assert a.room_id == room
    assert (await a.update(x=1, wait=True)).confirmed


# --- resync, gaps, duplicates ---------------------------------------------------------------------


async def test_resync_returns_the_same_player_and_state(clients: ClientFactory) -> None:
    room = new_room("resync")
    a = await clients()
    b = await clients()
    first = await a.join(room, playerName="A")
    await b.join(room, playerName="B")
    moved = await b.update(x=3, wait=True)
    assert moved.version is not None
    await a.wait_for_version(moved.version, timeout=5)
    token = a.session_token

    fresh = await a.resync()

    assert fresh.player_id == first.player_id == a.player_id
    assert fresh.resumed is False
    assert fresh.version == a.version
    assert fresh.state == a.state
    assert a.session_token == token  # RESYNC never rotates the token (§6)
    assert a.stats.resyncs == 1


async def test_gap_sends_resync_and_duplicates_are_ignored(
    kasagi_server: Any, clients: ClientFactory
) -> None:
    room = new_room("gap")
    async with Relay(kasagi_server.ws_url) as relay:
        a = await clients(relay.url)
        b = await clients()
        await a.join(room, playerName="A")
        await b.join(room, playerName="B")
        await next_of(a, PlayerJoined)

        relay.repeat_next("DELTA_UPDATE")
        first = await b.update(x=1, wait=True)
        assert first.version is not None
        await a.wait_for_version(first.version, timeout=5)
        await a.ping()  # the repeated frame has arrived by now
        assert a.stats.stale == 1
        assert a.stats.gaps == 0

        relay.drop_next("DELTA_UPDATE")
        await b.update(x=2, wait=True)  # lost on the way to a
        last = await b.update(x=3, wait=True)  # does not continue a's chain: gap
        assert last.version is not None
        await a.wait_for_version(last.version, timeout=5)

        assert a.stats.gaps == 1
        assert a.stats.resyncs == 1
        assert a.version == b.version
        assert a.state == b.state
        assert a.state is not None
        assert a.state["players"][b.player_id]["x"] == 3


# --- reconnect and resume -------------------------------------------------------------------------


async def test_resume_after_an_abrupt_socket_drop(
    kasagi_server: Any, clients: ClientFactory
) -> None:
    room = new_room("resume")
    async with Relay(kasagi_server.ws_url) as relay:
        a = await clients(relay.url, backoff=Backoff(initial=0.05, max_delay=0.5))
        watcher = await clients()
        await a.join(room, playerName="A", x=7)
        await watcher.join(room, playerName="W")
        player_id = a.player_id
        version = watcher.version
        assert version is not None
        await a.wait_for_version(version, timeout=5)

        relay.cut()  # TCP reset, no close frame, no LEAVE_ROOM: the grace period starts

        dropped = await next_of(a, Disconnected)
        assert dropped.will_reconnect
        resumed = await next_of(a, Resumed)  # nothing changed meanwhile: the state is kept
        back = await next_of(a, Reconnected)

        assert (resumed.room_id, resumed.version, resumed.resumed) == (room, version, True)
        assert (back.room_id, back.player_id, back.resumed) == (room, player_id, True)
        assert back.recovered is True
        assert a.player_id == player_id
        assert a.ready
        assert a.me == {"playerName": "A", "x": 7}
        assert a.stats.reconnects == 1

        # The others saw nothing: a resume changes no state and no version (§6).
        await watcher.ping()
        assert watcher.version == version
        assert not any(isinstance(e, PlayerLeft | PlayerJoined) for e in watcher.poll_events())

        # And the resumed player writes as before.
        moved = await a.update(x=8, wait=True)
        assert moved.version is not None
        await watcher.wait_for_version(moved.version, timeout=5)
        assert watcher.state is not None
        assert watcher.state["players"][player_id]["x"] == 8


async def away_while(relay: Relay, client: KasagiClient,
                     changes: Callable[[], Awaitable[None]]) -> Reconnected:
    """Cut ``client``'s connection, run ``changes`` while it cannot come back, let it back in."""
    relay.refusing = True
    relay.cut()
    await next_of(client, Disconnected)
    await changes()
    relay.refusing = False
    return await next_of(client, Reconnected, timeout=10)


async def fresh_state(url: str, room: str) -> FullState:
    """What a new member gets: a spectator's FULL_STATE (joining it changes nothing)."""
    async with connect(url) as watcher:
        return await watcher.join(room, spectate=True)


async def test_resume_recovers_the_missed_changes_and_matches_a_fresh_joiner(
    kasagi_server: Any, clients: ClientFactory
) -> None:
    room = new_room("recover")
    async with Relay(kasagi_server.ws_url) as relay:
        a = await clients(relay.url, backoff=Backoff(initial=0.05, max_delay=0.2))
        b = await clients()
        joined = await a.join(room, playerName="A", x=1)
        assert isinstance(joined.epoch, str) and joined.epoch
        await b.join(room, playerName="B")
        await next_of(a, PlayerJoined)
        held = a.version
        assert held is not None

        async def missed() -> None:  # deltas, a join and a leave, an entity
            for x in range(5):
                await b.update(x=x, wait=True)
            c = await clients()
            await c.join(room, playerName="C")
            await c.update_entity("door", open=True, wait=True)
            await c.leave()
            await b.update(y=3, wait=True)

        back = await away_while(relay, a, missed)
        assert (back.room_id, back.resumed, back.recovered) == (room, True, True)
        assert b.version is not None
        await a.wait_for_version(b.version, timeout=5)

        # The rejoin named the state a held; the answer kept it and sent only what changed.
        rejoin = [m for m in relay.from_client if m.get("type") == "JOIN_ROOM"][-1]
        assert rejoin["payload"]["sinceVersion"] == held
        assert rejoin["payload"]["epoch"] == joined.epoch
        after = relay.to_client[relay.to_client.index(
            next(m for m in relay.to_client if m.get("type") == "RESUMED")):]
        assert after[0]["version"] == held
        assert "FULL_STATE" not in {m.get("type") for m in after}
        assert {"DELTA_UPDATE", "PLAYER_JOINED", "PLAYER_LEFT"} <= {m.get("type") for m in after}
        assert a.stats.recoveries == 1 and a.stats.gaps == 0

        fresh = await fresh_state(kasagi_server.ws_url, room)
        assert a.version == fresh.version
        assert a.state == fresh.state
        assert a.session_token  # the (possibly rotated) token resumes again
        moved = await a.update(x=42, wait=True)
        assert moved.confirmed


async def test_resume_outside_the_log_falls_back_to_a_full_state(
    start_server: Any, clients: ClientFactory
) -> None:
    server = start_server(KASAGI_RECOVERY_LOG="5", KASAGI_RATE_LIMIT="10000",
                          KASAGI_RATE_BURST="10000")
    room = new_room("fallback")
    async with Relay(server.ws_url) as relay:
        a = await clients(relay.url, backoff=Backoff(initial=0.05, max_delay=0.2))
        b = await clients(server.ws_url)
        await a.join(room, playerName="A")
        await b.join(room, playerName="B")
        await next_of(a, PlayerJoined)

        async def too_many() -> None:  # far more than the log keeps (Redis trims by 100s)
            for x in range(400 if ON_REDIS else 40):
                await b.update(x=x, wait=True)

        back = await away_while(relay, a, too_many)
        assert (back.resumed, back.recovered) == (True, False)
        answer = [m for m in relay.to_client if m.get("type") in ("FULL_STATE", "RESUMED")][-1]
        assert answer["type"] == "FULL_STATE" and answer["payload"]["resumed"] is True
        assert a.stats.recoveries == 0
        fresh = await fresh_state(server.ws_url, room)
        assert a.version == fresh.version and a.state == fresh.state


async def test_reconnect_backs_off_while_the_server_is_unreachable(
    kasagi_server: Any, clients: ClientFactory
) -> None:
    room = new_room("backoff")
    async with Relay(kasagi_server.ws_url) as relay:
        a = await clients(relay.url, backoff=Backoff(initial=0.05, max_delay=0.2, jitter=0.0))
        await a.join(room, playerName="A")
        player_id = a.player_id

        relay.refusing = True  # handshakes now get HTTP 503
        relay.cut()
        attempts = [await next_of(a, Reconnecting) for _ in range(3)]
        assert [r.attempt for r in attempts] == [1, 2, 3]
        assert [r.delay for r in attempts] == [0.05, 0.1, 0.2]
        with pytest.raises(NotConnected):
            await a.update(x=1)

        relay.refusing = False
        back = await next_of(a, Reconnected)
        assert (back.player_id, back.resumed) == (player_id, True)
        assert (await a.update(x=1, wait=True)).confirmed


async def test_gives_up_after_max_reconnect_attempts(
    kasagi_server: Any, clients: ClientFactory
) -> None:
    async with Relay(kasagi_server.ws_url) as relay:
        a = await clients(relay.url, backoff=Backoff(initial=0.01, jitter=0.0),
                          max_reconnect_attempts=2)
        await a.join(new_room("giveup"))
        relay.refusing = True
        relay.cut()

        closed = await next_of(a, Closed)

    assert closed.reason == "gave up reconnecting"
    assert a.closed
    assert a.stats.reconnects == 0
    with pytest.raises(ClientClosed):
        await a.wait_ready()


async def test_close_ends_the_event_stream(clients: ClientFactory) -> None:
    a = await clients()
    await a.join(new_room("close"))
    await a.close()

    events = [event async for event in a]

    assert isinstance(events[-1], Closed)
    assert a.closed
    with pytest.raises(ClientClosed):
        await a.ping()


# --- events (PROTOCOL.md §11) --------------------------------------------------------------------


async def test_two_clients_exchange_an_event(clients: ClientFactory) -> None:
    room = new_room("event")
    a = await clients()
    b = await clients()
    watcher = await clients(encoding="msgpack")  # spectators receive events too, in both codecs
    await a.join(room, playerName="A")
    await b.join(room, playerName="B")
    await watcher.join(room, spectate=True)

    # §11 order: the update sent before the message is in b's mirror when the event arrives
    await a.update(x=42, y=24)
    await a.send_message("emote", {"emoji": "🎉"})
    got = await next_of(b, RoomEvent)
    assert (got.room_id, got.kind, got.data, got.sender) == (room, "emote", {"emoji": "🎉"},
                                                             a.player_id)
    assert got.timestamp is not None
    assert b.state is not None
    assert b.state["players"][a.player_id]["x"] == 42
    seen = await next_of(watcher, RoomEvent)
    assert (seen.kind, seen.data, seen.sender) == ("emote", {"emoji": "🎉"}, a.player_id)

    # no data: the event carries null; the answer goes the other way as well, in send order
    version = b.version
    await b.send_message("wave")
    await b.send_message("chat:say", "second", wait=True)
    first = await next_of(a, RoomEvent)
    second = await next_of(a, RoomEvent)
    assert (first.kind, first.data, first.sender) == ("wave", None, b.player_id)
    assert (second.kind, second.data) == ("chat:say", "second")
    assert b.version == version, "events are not state: no new version"

    # the sender receives nothing on success
    await a.ping()
    await b.ping()
    assert not [e for e in a.poll_events() if isinstance(e, RoomEvent)]
    assert not [e for e in b.poll_events() if isinstance(e, RoomEvent)]
    assert a.stats.room_events == 2 and b.stats.room_events == 1


async def test_send_message_wait_raises_the_typed_refusal(clients: ClientFactory) -> None:
    room = new_room("event-refused")
    player = await clients()
    watcher = await clients()
    await player.join(room, playerName="P")
    await watcher.join(room, spectate=True)

    with pytest.raises(Forbidden) as refused:  # a spectator's MESSAGE is refused (§11)
        await watcher.send_message("emote", {"emoji": "👀"}, wait=True)
    assert refused.value.request_id is not None
    await watcher.send_message("emote")  # fire-and-forget: the refusal is an Error event
    error = await next_of(watcher, Error)
    assert error.code == "FORBIDDEN"

    with pytest.raises(ValueError):
        await player.send_message("bad kind", wait=True)
    assert await player.send_message("emote", {"emoji": "👋"}, wait=True) is None
    assert not [e for e in player.poll_events() if isinstance(e, Error)]


# --- a relay that can lose, repeat or cut traffic -----------------------------------------------


class Relay:
    """Forwards WebSocket messages between clients and the live server, one upstream per client.

    ``drop_next``/``repeat_next`` lose or duplicate the next server → client
    message of a type; ``cut`` aborts every TCP connection on both sides.
    """

    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url
        self.url = ""
        self._drop: list[str] = []
        self._repeat: list[str] = []
        self._links: list[tuple[ServerConnection, Any]] = []
        self._server: Any = None
        #: every message that went through, decoded, in order per direction
        self.from_client: list[dict[str, Any]] = []
        self.to_client: list[dict[str, Any]] = []
        self.refusing = False
        """While true, handshakes are answered with HTTP 503 (a server that is down)."""

    async def __aenter__(self) -> Relay:
        self._server = await serve(self._link, "127.0.0.1", 0, max_size=None, compression=None,
                                   process_request=self._gate)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/sync"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    def drop_next(self, message_type: str) -> None:
        self._drop.append(message_type)

    def repeat_next(self, message_type: str) -> None:
        self._repeat.append(message_type)

    def cut(self) -> None:
        for downstream, upstream in self._links:
            downstream.transport.abort()
            upstream.transport.abort()
        self._links.clear()

    def _gate(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refusing:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "down for the test\n")
        return None

    async def _link(self, downstream: ServerConnection) -> None:
        headers = {}
        if downstream.request is not None and "Authorization" in downstream.request.headers:
            headers["Authorization"] = downstream.request.headers["Authorization"]
        async with ws_connect(self.upstream_url, additional_headers=headers, max_size=None,
                              compression=None) as upstream:
            self._links.append((downstream, upstream))
            pumps = [
                asyncio.create_task(self._pump(downstream, upstream, to_client=False)),
                asyncio.create_task(self._pump(upstream, downstream, to_client=True)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()

    async def _pump(self, source: Any, sink: Any, *, to_client: bool) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in source:
                copies = 1
                decoded = orjson.loads(message)
                (self.to_client if to_client else self.from_client).append(decoded)
                if to_client:
                    kind = decoded.get("type")
                    if kind in self._drop:
                        self._drop.remove(kind)
                        copies = 0
                    elif kind in self._repeat:
                        self._repeat.remove(kind)
                        copies = 2
                for _ in range(copies):
                    await sink.send(message)
