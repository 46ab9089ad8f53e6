"""The asyncio client: one WebSocket, at most one room, a state mirror, reconnect and resume.

This is the only module of the package that does I/O. It feeds decoded frames
to the pure parts (``parse_server_message``, ``StateMirror``) and carries out
what they decide: answer the call a ``requestId`` belongs to, send RESYNC on a
version gap, emit events, rejoin with the session token after a drop (naming
the state it still holds, so that the server can answer RESUMED and send only
the missed changes, PROTOCOL.md §14). One
background task (the supervisor) owns the socket: it reads frames in order and
reconnects; user calls only send.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from . import bin1
from .backoff import Backoff
from .documents import DocMessage, SyncedDoc, check_doc_id
from .errors import (
    ClientClosed,
    ConnectFailed,
    ConnectionLost,
    KasagiClientError,
    KasagiError,
    NotConnected,
    NotJoined,
    RequestId,
    RequestTimeout,
)
from .events import (
    Closed,
    Delta,
    Disconnected,
    Error,
    Event,
    FullState,
    GapDetected,
    MalformedMessage,
    PlayerJoined,
    PlayerLeft,
    Pong,
    Reconnected,
    Reconnecting,
    Resumed,
    RoomEvent,
    ServerEvent,
    StateChange,
    parse_server_message,
)
from .mirror import ChainOutcome, StateMirror
from .wire import (
    MSGPACK_SUBPROTOCOL,
    check_kind,
    decode,
    encode,
    encode_msgpack,
    envelope,
    message,
)

__all__ = ["ClientStats", "KasagiClient", "UpdateResult", "connect"]

logger = logging.getLogger("kasagi_client")

USER_AGENT = "kasagi-client-python/0.1"
# A FULL_STATE of a full room (1 MiB state by default) plus its envelope must fit in one frame.
DEFAULT_MAX_FRAME = 16 * 2**20
_HANDSHAKE_ERRORS = (OSError, TimeoutError, WebSocketException)
_T = TypeVar("_T")


@dataclass(slots=True)
class ClientStats:
    """Counters for load tools and tests; they only grow."""

    messages_in: int = 0
    messages_out: int = 0
    gaps: int = 0
    """Version gaps detected (each one sent a RESYNC)."""
    resyncs: int = 0
    """RESYNC messages sent, automatic and explicit."""
    stale: int = 0
    """State-changing messages ignored because their version was not newer (duplicates)."""
    errors: int = 0
    """ERROR messages received."""
    reconnects: int = 0
    """Successful reconnects (socket back and room rejoined)."""
    recoveries: int = 0
    """Resumes answered RESUMED (§14): the state was kept, only the missed changes came."""
    malformed: int = 0
    """Server frames that broke the contract and were dropped."""
    events_dropped: int = 0
    """Events discarded because the event queue was full (nobody iterating)."""
    room_events: int = 0
    """EVENT messages (§11) received for our room, queued or not."""


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What ``update(..., wait=True)`` learnt about an update the server accepted.

    ``version`` is the mirror version at which the written values were first
    seen after the server acknowledged the update: the version of its DELTA,
    or the current version when the update was a no-op. It is None when they
    were not seen within ``confirm_timeout``: the room type stored other values
    (clamped or dropped fields) or another writer changed them meanwhile.
    """

    request_id: RequestId
    version: int | None

    @property
    def confirmed(self) -> bool:
        return self.version is not None


@dataclass(slots=True)
class _Pending:
    """A request waiting for the answer carrying its requestId."""

    future: asyncio.Future[ServerEvent]
    sent_at: float
    internal: bool
    """Internal requests (update barriers) do not surface their PONG as an event."""


class KasagiClient:
    """A Kasagi Sync connection. Prefer :func:`connect`; see docs/python-client.md.

    Options:
        token: REST API token, sent as ``Authorization: Token <key>`` (§7).
        reconnect: reconnect and resume automatically when the socket drops.
        backoff: delays between reconnect attempts.
        max_reconnect_attempts: give up (and close) after this many failed
            attempts in a row; None retries forever.
        request_timeout: default seconds to wait for the answer to a request.
        confirm_timeout: how long ``update(wait=True)`` waits for the DELTA
            after the server acknowledged the update.
        resync_retry: resend RESYNC if a gap is still unresolved after this long.
        max_queued_events: events kept for the iterator; the oldest are dropped
            beyond it (0 disables events, for load tools that never read them).
        open_timeout: seconds for the WebSocket handshake.
        max_frame_size: largest server frame accepted, in bytes.
        ws_options: extra keyword arguments for ``websockets.asyncio.client.connect``.
        encoding: ``"auto"`` (default): offer the compact codec ``kasagi.bin1``
            (docs/protocol.md; about a quarter of JSON's bytes) and use it when the
            server accepts it, JSON text frames otherwise; ``"bin1"``: the same;
            ``"msgpack"``: offer ``kasagi.msgpack`` (about a third fewer bytes than
            JSON; needs ``kasagi-client[msgpack]``); ``"json"``: text frames only.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        reconnect: bool = True,
        backoff: Backoff | None = None,
        max_reconnect_attempts: int | None = None,
        request_timeout: float = 10.0,
        confirm_timeout: float = 0.5,
        resync_retry: float = 2.0,
        max_queued_events: int = 10_000,
        open_timeout: float = 10.0,
        max_frame_size: int = DEFAULT_MAX_FRAME,
        ws_options: Mapping[str, Any] | None = None,
        encoding: str = "auto",
    ) -> None:
        if encoding not in ("auto", "bin1", "json", "msgpack"):
            raise ValueError("encoding must be 'auto', 'bin1', 'json' or 'msgpack'")
        if encoding == "msgpack":
            import msgpack  # noqa: F401 - fail now, not at the first frame
        self.url = url
        self.encoding = encoding
        #: the server accepted a binary codec (MessagePack or bin1) on the current socket
        self.binary = False
        #: the codec of the current socket: ``"json"``, ``"msgpack"`` or ``"bin1"``
        self.codec = "json"
        self._bin1_out: bin1.Encoder | None = None
        self._bin1_in: bin1.Decoder | None = None
        self.reconnect = reconnect
        self.backoff = backoff or Backoff()
        self.max_reconnect_attempts = max_reconnect_attempts
        self.request_timeout = request_timeout
        self.confirm_timeout = confirm_timeout
        self.resync_retry = resync_retry
        self.stats = ClientStats()
        self._token = token
        self._max_queued = max_queued_events
        self._ws_options: dict[str, Any] = {
            "open_timeout": open_timeout,
            "max_size": max_frame_size,
            "user_agent_header": USER_AGENT,
            **(ws_options or {}),
        }
        self._mirror = StateMirror()
        self._ws: ClientConnection | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)
        self._pending: dict[RequestId, _Pending] = {}
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[int | None]]] = []
        self._queue: deque[Event] = deque()
        self._queue_signal = asyncio.Event()
        self._ready_event = asyncio.Event()
        self._connected = False
        self._rejoining = False
        self._closing = False
        self._closed = False
        # The room we mean to be in: set when a JOIN is sent, cleared by leave() or a kick.
        # A FULL_STATE for any other room is a late answer and is not loaded.
        self._target_room: str | None = None
        self._join_fields: dict[str, Any] = {}
        self._session_token: str | None = None
        self._left_reason: str | None = None
        self._recovered = False  # the last RESUMED kept the mirror (§14)
        self._last_resync_at = float("-inf")
        self._attempts = 0  # consecutive reconnect attempts without a successful rejoin
        self._handlers: dict[type, Callable[[Any], None]] = {
            FullState: self._on_full_state,
            Resumed: self._on_resumed,
            Delta: self._on_state_change,
            PlayerJoined: self._on_state_change,
            PlayerLeft: self._on_state_change,
            Pong: self._on_pong,
            Error: self._on_error,
            RoomEvent: self._on_room_event,
            DocMessage: self._on_doc,
        }
        #: (§16) the room's documents this client follows, by docId
        self._docs: dict[str, SyncedDoc] = {}

    # --- read-only view ------------------------------------------------------------------------

    @property
    def state(self) -> dict[str, Any] | None:
        """The mirrored room state (read-only), or None before the first FULL_STATE."""
        return self._mirror.state

    @property
    def version(self) -> int | None:
        """The room version the mirror holds."""
        return self._mirror.version

    @property
    def player_id(self) -> str | None:
        """Our playerId in the room; None for a spectator or outside a room."""
        return self._mirror.player_id

    @property
    def room_id(self) -> str | None:
        """The room the mirror is about."""
        return self._mirror.room_id

    @property
    def me(self) -> dict[str, Any] | None:
        """Our own player object in the mirror."""
        return self._mirror.own_player()

    @property
    def session_token(self) -> str | None:
        """The secret that resumes our player (§6); pass it to ``join(session_token=...)``."""
        return self._session_token

    @property
    def left_reason(self) -> str | None:
        """Set when the server removed us (``kicked``, ``closed``...); no auto-rejoin then."""
        return self._left_reason

    @property
    def connected(self) -> bool:
        """The socket is open (a rejoin may still be under way)."""
        return self._connected

    @property
    def ready(self) -> bool:
        """Connected and, if we were in a room, back in it: room calls can be made."""
        return self._connected and not self._rejoining and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    # --- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> KasagiClient:
        """Open the socket and start reading. A failed first handshake raises ConnectFailed."""
        if self._closed:
            raise ClientClosed("the client is closed")
        if self._supervisor is not None:
            return self
        try:
            self._ws = await self._open_socket()
        except _HANDSHAKE_ERRORS as exc:
            raise ConnectFailed(f"could not connect to {self.url}: {exc}") from exc
        self._connected = True
        self._ready_event.set()
        self._supervisor = asyncio.create_task(self._supervise(), name="kasagi-client")
        return self

    async def close(self, *, leave: bool = True) -> None:
        """Close the client; iteration ends after a final :class:`Closed` event.

        With ``leave=True`` a LEAVE_ROOM is sent first, so the player is removed
        at once. With ``leave=False`` the server keeps the player for its grace
        period, and ``session_token`` can resume it from another client.
        """
        if self._closed or self._closing:
            return
        if leave and self._connected and self._mirror.room_id is not None:
            with contextlib.suppress(KasagiClientError):
                await self.leave()
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        self._finish("closed by client")

    async def __aenter__(self) -> KasagiClient:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until room calls can be made again (after a reconnect and rejoin)."""
        async with asyncio.timeout(timeout):
            while not self.ready:
                if self._closed:
                    raise ClientClosed("the client is closed")
                self._ready_event.clear()
                await self._ready_event.wait()

    # --- requests ------------------------------------------------------------------------------

    async def join(
        self,
        room_id: str,
        fields: Mapping[str, Any] | None = None,
        /,
        *,
        spectate: bool = False,
        session_token: str | None = None,
        timeout: float | None = None,
        **more: Any,
    ) -> FullState:
        """Join ``room_id`` with initial player fields; returns its FULL_STATE.

        Raises the typed error of a refusal (``Forbidden``, ``RoomFull``...).
        ``session_token`` resumes a player from an earlier connection.
        """
        payload = {**(fields or {}), **more}
        if spectate:
            payload["spectate"] = True
        previous = (self._target_room, self._join_fields)
        self._target_room, self._join_fields = room_id, payload
        try:
            answer = await self._join_request(
                room_id, payload, session_token, None, timeout, ready=True
            )
            return _expect(answer, FullState)
        except BaseException:
            if self._mirror.room_id != room_id:
                self._target_room, self._join_fields = previous
            raise

    @overload
    async def update(
        self,
        patch: Mapping[str, Any] | None = None,
        /,
        *,
        wait: Literal[False] = False,
        expected_version: int | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> None: ...

    @overload
    async def update(
        self,
        patch: Mapping[str, Any] | None = None,
        /,
        *,
        wait: Literal[True],
        expected_version: int | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> UpdateResult: ...

    async def update(
        self,
        patch: Mapping[str, Any] | None = None,
        /,
        *,
        wait: bool = False,
        expected_version: int | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> UpdateResult | None:
        """Merge-patch our own player object; ``None`` values delete fields.

        Fire-and-forget by default. ``wait=True`` raises the typed refusal
        (``InvalidUpdate``, ``VersionConflict``...) or returns an UpdateResult;
        ``expected_version`` makes it compare-and-set (§5).
        """
        body = {**(patch or {}), **fields}
        return await self._write(body, None, wait, expected_version, timeout)

    @overload
    async def update_entity(
        self,
        entity_id: str,
        patch: Mapping[str, Any] | None = None,
        /,
        *,
        wait: Literal[False] = False,
        expected_version: int | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> None: ...

    @overload
    async def update_entity(
        self,
        entity_id: str,
        patch: Mapping[str, Any] | None = None,
        /,
        *,
        wait: Literal[True],
        expected_version: int | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> UpdateResult: ...

    async def update_entity(
        self,
        entity_id: str,
        patch: Mapping[str, Any] | None = None,
        /,
        *,
        wait: bool = False,
        expected_version: int | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> UpdateResult | None:
        """Merge-patch the shared entity ``entity_id`` (created if absent); as :meth:`update`."""
        body = {**(patch or {}), **fields}
        return await self._write(body, entity_id, wait, expected_version, timeout)

    async def send_message(
        self,
        kind: str,
        data: Any = None,
        *,
        wait: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Send a MESSAGE (§11) to the room's code: ``kind`` and any JSON ``data``.

        The built-in room types relay it to every other member as a
        :class:`RoomEvent` (``sender`` = our playerId); we receive nothing on
        success. A bad ``kind`` (not ``[A-Za-z0-9_.:-]{1,64}``) raises
        ValueError before anything is sent.

        Fire-and-forget by default: a refusal arrives later as an
        :class:`Error` event. ``wait=True`` sends a PING after the MESSAGE
        and returns once it is answered, raising the typed refusal
        (``Forbidden``, ``RateLimited``, ``UnknownMessage``, ``InvalidUpdate``,
        ``PayloadTooLarge``...) if one came first. A refusal made by room code
        that runs in another process (a Redis deployment, §12) may come after
        the PONG: it then arrives as an :class:`Error` event like a
        fire-and-forget one.
        """
        check_kind(kind)  # a bad kind is a bug of the caller, whatever the connection
        msg = message(self._require_room(), kind, data)
        if not wait:
            await self._send(msg, ready=True)
            return
        await self._send_with_barrier(msg, timeout)

    # --- documents (§16) ----------------------------------------------------------------------

    def doc(self, doc_id: str) -> Any:
        """The room's document ``doc_id`` as a ``pycrdt.Doc`` kept in sync (§16).

        Edit it like any pycrdt doc (``doc.get("note", type=Text).insert(0, "hi")``):
        each transaction goes out as DOC_UPDATE, the other members' updates are
        applied as they arrive, and after every (re)join a DOC_SYNC exchange
        repairs what either side missed. The same Doc is returned for the same
        ``doc_id``; ``await client.doc_synced(doc_id)`` waits for the first sync.
        Needs the ``documents`` extra (pycrdt).
        """
        check_doc_id(doc_id)
        synced = self._docs.get(doc_id)
        if synced is None:
            synced = self._docs[doc_id] = SyncedDoc(self, doc_id)
            if self._joined_room() is not None and self._connected and not self._rejoining:
                self._spawn(synced.sync())
        return synced.doc

    async def doc_synced(self, doc_id: str, timeout: float | None = None) -> Any:
        """Wait until ``doc(doc_id)`` got its first DOC_SYNC answer; the Doc."""
        doc = self.doc(doc_id)
        await asyncio.wait_for(self._docs[doc_id].synced.wait(), self._timeout(timeout))
        return doc

    @property
    def _binary_fields(self) -> bool:
        """Binary fields travel as bytes (MessagePack, bin1), else as base64 (JSON)."""
        return self.binary

    def _on_doc(self, event: DocMessage) -> None:
        self._answer(event.request_id)
        synced = self._docs.get(event.doc_id)
        if synced is not None and event.room_id == self._joined_room():
            synced.receive(event)

    def _sync_docs(self) -> None:
        for synced in self._docs.values():
            self._spawn(synced.sync())

    async def resync(self, timeout: float | None = None) -> FullState:
        """Ask for a fresh FULL_STATE of our room; the mirror is replaced by it."""
        room = self._require_room()
        self._note_resync()
        answer = await self._request(envelope("RESYNC", room_id=room), timeout, ready=True)
        return _expect(answer, FullState)

    async def ping(self, timeout: float | None = None) -> float:
        """Round-trip time of an application PING, in seconds."""
        msg = envelope("PING", room_id=self._joined_room())
        pong = _expect(await self._request(msg, timeout, ready=False), Pong)
        return pong.rtt if pong.rtt is not None else 0.0

    async def leave(self) -> None:
        """Leave the room at once (no grace period, no resume). Sends nothing if disconnected."""
        room = self._target_room or self._mirror.room_id
        if room is None:
            raise NotJoined("not in a room")
        self._forget_room()
        if self._connected:
            await self._send(envelope("LEAVE_ROOM", room_id=room), ready=False)

    async def wait_for_version(self, version: int, timeout: float | None = None) -> None:
        """Wait until the mirror holds ``version`` or a later one (TimeoutError otherwise)."""
        reached = await self._until(
            lambda: self._mirror.version is not None and self._mirror.version >= version,
            timeout,
        )
        if reached is None:
            raise TimeoutError(f"version {version} not reached (at {self._mirror.version})")

    # --- events --------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def events(self) -> AsyncIterator[Event]:
        """All events in arrival order; ends after :class:`Closed`."""
        while True:
            try:
                yield await self.next_event()
            except ClientClosed:
                return

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next event; ClientClosed once the last one was taken, TimeoutError on timeout."""
        async with asyncio.timeout(timeout):
            while not self._queue:
                if self._closed:
                    raise ClientClosed("the client is closed")
                self._queue_signal.clear()
                await self._queue_signal.wait()
        return self._queue.popleft()

    def poll_events(self) -> list[Event]:
        """The events queued so far, without waiting (for game loops that poll each frame)."""
        events = list(self._queue)
        self._queue.clear()
        return events

    # --- sending -------------------------------------------------------------------------------

    def _joined_room(self) -> str | None:
        """The room we are confirmed in and mean to stay in (not after a kick)."""
        room = self._mirror.room_id
        return room if room is not None and room == self._target_room else None

    def _require_room(self) -> str:
        room = self._mirror.room_id
        if room is None:
            raise NotJoined("not in a room: join() first")
        return room

    async def _send(self, msg: dict[str, Any], *, ready: bool) -> None:
        """Write one frame. ``ready`` requires the room to be rejoined after a reconnect."""
        if self._closed or self._closing:
            raise ClientClosed("the client is closed")
        ws = self._ws
        if ws is None or not self._connected or (ready and self._rejoining):
            raise NotConnected("not connected (a reconnect is under way)")
        try:
            if self._bin1_out is not None:
                await ws.send(self._bin1_out.encode(msg))
            else:
                await ws.send(encode_msgpack(msg) if self.binary else encode(msg))
        except ConnectionClosed as exc:
            raise ConnectionLost("the connection closed while sending") from exc
        self.stats.messages_out += 1

    def _register(self, *, internal: bool) -> tuple[str, asyncio.Future[ServerEvent]]:
        request_id = f"py-{next(self._ids)}"
        future: asyncio.Future[ServerEvent] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(future, time.perf_counter(), internal)
        return request_id, future

    async def _request(
        self, msg: dict[str, Any], timeout: float | None, *, ready: bool
    ) -> ServerEvent:
        """Send with a fresh requestId; return the answer, or raise the typed ERROR."""
        request_id, future = self._register(internal=False)
        msg["requestId"] = request_id
        try:
            await self._send(msg, ready=ready)
            async with asyncio.timeout(self._timeout(timeout)):
                answer = await future
        except TimeoutError:
            raise RequestTimeout(f"no answer to {msg['type']} {request_id}") from None
        finally:
            self._pending.pop(request_id, None)
        if isinstance(answer, Error):
            raise answer.exception()
        return answer

    async def _join_request(
        self,
        room_id: str,
        payload: Mapping[str, Any],
        session_token: str | None,
        since: tuple[int, str] | None,
        timeout: float | None,
        *,
        ready: bool,
    ) -> FullState | Resumed:
        """JOIN_ROOM; with a token and ``since`` (version, epoch) the answer may be RESUMED."""
        body = dict(payload)
        if session_token:
            body["sessionToken"] = session_token
            if since is not None:
                body["sinceVersion"], body["epoch"] = since
        answer = await self._request(
            envelope("JOIN_ROOM", room_id=room_id, payload=body), timeout, ready=ready
        )
        if isinstance(answer, Resumed):
            return answer
        return _expect(answer, FullState)

    async def _write(
        self,
        body: dict[str, Any],
        entity_id: str | None,
        wait: bool,
        expected_version: int | None,
        timeout: float | None,
    ) -> UpdateResult | None:
        msg = envelope(
            "STATE_UPDATE",
            room_id=self._require_room(),
            payload=body,
            entityId=entity_id,
            version=self._mirror.version,
            expectedVersion=expected_version,
        )
        if not wait:
            await self._send(msg, ready=True)
            return None
        request_id = await self._send_with_barrier(msg, timeout)
        version = await self._until(
            lambda: self._mirror.reflects(body, entity_id=entity_id), self.confirm_timeout
        )
        return UpdateResult(request_id, version)

    async def _send_with_barrier(self, msg: dict[str, Any], timeout: float | None) -> str:
        """Send the update (or MESSAGE) then a PING; return once the server has processed it.

        Deltas carry no requestId, so the answer to an accepted update cannot
        be matched. But the server handles a connection's messages in order,
        and a refusal is an ERROR with the update's requestId sent before it
        reads the PING: any answer to the PING without that ERROR means the
        update was accepted (or was a no-op).
        """
        update_id, refused = self._register(internal=True)
        barrier_id, barrier = self._register(internal=True)
        msg["requestId"] = update_id
        try:
            await self._send(msg, ready=True)
            ping = envelope("PING", room_id=msg["roomId"], request_id=barrier_id)
            await self._send(ping, ready=True)
            await asyncio.wait(
                {refused, barrier},
                timeout=self._timeout(timeout),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            self._pending.pop(update_id, None)
            self._pending.pop(barrier_id, None)
        if refused.done():
            _consume(barrier)
            answer = refused.result()  # raises ConnectionLost if the socket dropped
            if isinstance(answer, Error):
                raise answer.exception()
        if not barrier.done():
            raise RequestTimeout(f"no acknowledgement of {msg['type']} {update_id}")
        barrier.result()  # PONG, or even an ERROR about the PING: the update went through
        return update_id

    async def _until(self, predicate: Callable[[], bool], timeout: float | None) -> int | None:
        """The mirror version once ``predicate`` holds, or None after ``timeout``."""
        if predicate():
            return self._mirror.version
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _timeout(self, timeout: float | None) -> float:
        return self.request_timeout if timeout is None else timeout

    def _note_resync(self) -> None:
        self._last_resync_at = time.monotonic()
        self.stats.resyncs += 1

    def _forget_room(self) -> None:
        self._target_room = None
        self._join_fields = {}
        self._session_token = None
        self._mirror.reset()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _auto_resync(self) -> None:
        room = self._mirror.room_id
        if room is None or not self._connected:
            return
        self._note_resync()
        self._spawn(self._send_quietly(envelope("RESYNC", room_id=room)))

    async def _send_quietly(self, msg: dict[str, Any]) -> None:
        # If the socket is gone, the rejoin after reconnecting brings a FULL_STATE anyway.
        with contextlib.suppress(KasagiClientError):
            await self._send(msg, ready=False)

    # --- receiving -----------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        if self._max_queued <= 0:
            return
        if len(self._queue) >= self._max_queued:
            self._queue.popleft()
            self.stats.events_dropped += 1
        self._queue.append(event)
        self._queue_signal.set()

    def _notify_waiters(self) -> None:
        for predicate, future in list(self._waiters):
            if not future.done() and predicate():
                future.set_result(self._mirror.version)

    def _answer(self, request_id: RequestId | None) -> _Pending | None:
        if request_id is None:
            return None
        pending = self._pending.pop(request_id, None)
        return pending if pending is not None and not pending.future.done() else None

    def _handle_frame(self, frame: str | bytes) -> None:
        self.stats.messages_in += 1
        try:
            if self._bin1_in is not None and isinstance(frame, bytes):
                event = parse_server_message(self._bin1_in.decode(frame))
            else:
                event = parse_server_message(decode(frame))
        except (MalformedMessage, bin1.Bin1Error) as exc:
            self.stats.malformed += 1
            logger.warning("dropped a malformed server message: %s", exc)
            return
        if event is None:
            return
        try:
            self._handlers[type(event)](event)
        except Exception:  # a client bug must not kill the reader and the connection with it
            logger.exception("failed to handle %r", event)

    def _on_full_state(self, event: FullState) -> None:
        pending = self._answer(event.request_id)
        if event.room_id == self._target_room:
            self._mirror.load(event)
            if event.session_token is not None:
                self._session_token = event.session_token
            self._left_reason = None
            self._emit(event)
            self._notify_waiters()
            self._sync_docs()
        else:
            logger.debug("ignored a FULL_STATE for %s (not our room)", event.room_id)
        if pending is not None:
            pending.future.set_result(event)

    def _on_resumed(self, event: Resumed) -> None:
        """RESUMED (§14): keep the state; the missed changes follow as ordinary frames."""
        pending = self._answer(event.request_id)
        if event.room_id == self._target_room:
            if event.session_token is not None:
                self._session_token = event.session_token  # the token may be rotated
            self._left_reason = None
            self._recovered = self._mirror.resume(event)
            if self._recovered:
                self.stats.recoveries += 1
                self._emit(event)
                self._notify_waiters()
                self._sync_docs()  # §14: RESUMED does not replay document updates
            else:  # not the state we hold (never from a server following §14): start over
                logger.warning("RESUMED at %s/%s does not match the mirror (%s/%s); resyncing",
                               event.version, event.epoch, self._mirror.version,
                               self._mirror.epoch)
                self._mirror.in_sync = False
                self._auto_resync()
        else:
            logger.debug("ignored a RESUMED for %s (not our room)", event.room_id)
        if pending is not None:
            pending.future.set_result(event)

    def _on_state_change(self, event: StateChange) -> None:
        expected = self._mirror.version
        outcome = self._mirror.apply(event)
        if outcome is ChainOutcome.APPLIED:
            if isinstance(event, PlayerLeft) and event.player_id == self._mirror.player_id:
                # Removed by the server (kicked, room closed): nothing left to resume.
                self._left_reason = event.reason
                self._target_room = None
                self._session_token = None
            self._emit(event)
            self._notify_waiters()
        elif outcome is ChainOutcome.STALE:
            self.stats.stale += 1
        elif outcome is ChainOutcome.GAP:
            self.stats.gaps += 1
            logger.info("version gap in %s: have %s, got %s->%s; resyncing",
                        event.room_id, expected, event.base_version, event.version)
            self._emit(GapDetected(event.room_id, expected or 0, event.base_version,
                                   event.version))
            self._auto_resync()
        elif outcome is ChainOutcome.OUT_OF_SYNC:
            if time.monotonic() - self._last_resync_at >= self.resync_retry:
                self._auto_resync()

    def _on_pong(self, event: Pong) -> None:
        pending = self._answer(event.request_id)
        if pending is not None:
            event = replace(event, rtt=time.perf_counter() - pending.sent_at)
        if pending is None or not pending.internal:
            self._emit(event)
        if pending is not None:
            pending.future.set_result(event)

    def _on_error(self, event: Error) -> None:
        self.stats.errors += 1
        pending = self._answer(event.request_id)
        if pending is None:
            self._emit(event)  # nobody awaits it: surface it as an event
        else:
            pending.future.set_result(event)  # raised by the awaiting call instead

    def _on_room_event(self, event: RoomEvent) -> None:
        if event.room_id != self._mirror.room_id:
            logger.debug("ignored an EVENT for %s (not our room)", event.room_id)
            return
        self.stats.room_events += 1
        self._emit(event)

    # --- connection supervision ----------------------------------------------------------------

    async def _open_socket(self) -> ClientConnection:
        headers = {"Authorization": f"Token {self._token}"} if self._token else {}
        options = dict(self._ws_options)
        if self.encoding == "msgpack":
            options.setdefault("subprotocols", [MSGPACK_SUBPROTOCOL])
        elif self.encoding in ("auto", "bin1"):
            options.setdefault("subprotocols", [bin1.SUBPROTOCOL])
        ws = await ws_connect(self.url, additional_headers=headers, **options)
        # A server that does not know the subprotocol answers without one: JSON then.
        self.codec = {MSGPACK_SUBPROTOCOL: "msgpack", bin1.SUBPROTOCOL: "bin1"}.get(
            ws.subprotocol or "", "json")
        self.binary = self.codec != "json"
        # bin1 keeps names per connection: fresh tables for every socket
        self._bin1_out = bin1.Encoder() if self.codec == "bin1" else None
        self._bin1_in = bin1.Decoder() if self.codec == "bin1" else None
        return ws

    async def _supervise(self) -> None:
        """Read frames in order; on a drop, reconnect with backoff and rejoin."""
        reason = "closed by client"
        try:
            while True:
                ws = self._ws
                assert ws is not None
                await self._read(ws)
                if self._closing:
                    return
                self._on_socket_lost()
                self._emit(Disconnected(ws.close_code, ws.close_reason or "", self.reconnect))
                if not self.reconnect:
                    reason = "connection lost"
                    return
                new_ws = await self._reconnect()
                if new_ws is None:
                    reason = "gave up reconnecting"
                    return
                self._ws = new_ws
                self._connected = True
                self._after_reconnect()
        finally:
            self._finish(reason)

    async def _read(self, ws: ClientConnection) -> None:
        while True:
            try:
                frame = await ws.recv()
            except ConnectionClosed:
                return
            self._handle_frame(frame)

    def _on_socket_lost(self) -> None:
        self._connected = False
        self._ready_event.clear()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(ConnectionLost("the connection dropped"))
        self._pending.clear()

    async def _reconnect(self) -> ClientConnection | None:
        """Open a new socket, backing off; the attempt count only resets once a rejoin succeeds,
        so a server that accepts and then drops at once still gets growing delays."""
        while self.max_reconnect_attempts is None or self._attempts < self.max_reconnect_attempts:
            self._attempts += 1
            delay = self.backoff.delay(self._attempts)
            self._emit(Reconnecting(self._attempts, delay))
            await asyncio.sleep(delay)
            try:
                return await self._open_socket()
            except _HANDSHAKE_ERRORS as exc:
                logger.info("reconnect attempt %d to %s failed: %s", self._attempts, self.url, exc)
        return None

    def _after_reconnect(self) -> None:
        room = self._joined_room()
        if room is None:
            self._reconnected(Reconnected(None, None, False))
            return
        self._rejoining = True
        self._spawn(self._rejoin(room))

    async def _rejoin(self, room: str) -> None:
        """JOIN_ROOM with the session token: resumes our player within the grace period.

        It names the state the mirror holds (``sinceVersion``, ``epoch``): the
        server answers RESUMED when it still has every change since, FULL_STATE
        otherwise (§14). Spectators have no token and always get a FULL_STATE.
        """
        token = self._session_token
        since = self._mirror.recovery_point(room) if token else None
        try:
            answer = await self._join_request(
                room, self._join_fields, token, since, None, ready=False
            )
        except KasagiError as err:
            if self._target_room == room:
                self._forget_room()
            self._emit(Error(err.code, err.message, err.payload, err.request_id, room))
            self._reconnected(Reconnected(None, None, False))
        except RequestTimeout:
            if self._ws is not None:  # no answer: drop this socket, the supervisor retries
                await self._ws.close()
        except (NotConnected, ClientClosed):
            pass  # dropped again: the supervisor reconnects and rejoins once more
        else:
            if self._target_room == room:
                self._reconnected(Reconnected(
                    answer.room_id, answer.player_id, answer.resumed,
                    recovered=isinstance(answer, Resumed) and self._recovered,
                ))
            else:  # left() while the rejoin was in flight
                self._reconnected(Reconnected(None, None, False))

    def _reconnected(self, event: Reconnected) -> None:
        self._rejoining = False
        self._attempts = 0
        self.stats.reconnects += 1
        self._ready_event.set()
        self._emit(event)

    def _finish(self, reason: str) -> None:
        """Release every waiter exactly once and end the event stream."""
        if self._closed:
            return
        self._closed = True
        self._connected = False
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(ClientClosed("the client is closed"))
        self._pending.clear()
        for _, future in self._waiters:
            if not future.done():
                future.set_result(None)
        for task in self._tasks:
            task.cancel()
        self._emit(Closed(reason))
        self._queue_signal.set()
        self._ready_event.set()


def _expect(answer: ServerEvent, kind: type[_T]) -> _T:
    if not isinstance(answer, kind):
        raise KasagiClientError(f"expected {kind.__name__}, the server answered {answer!r}")
    return answer


def _consume(future: asyncio.Future[Any]) -> None:
    """Mark a finished future's exception as retrieved (or cancel it) to avoid noisy warnings."""
    if future.done():
        if not future.cancelled():
            future.exception()
    else:
        future.cancel()


class _Connecting:
    """What :func:`connect` returns: ``await`` it, or use it with ``async with``."""

    def __init__(self, client: KasagiClient) -> None:
        self._client = client

    def __await__(self) -> Generator[Any, None, KasagiClient]:
        return self._client.open().__await__()

    async def __aenter__(self) -> KasagiClient:
        return await self._client.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.close()


def connect(url: str, token: str | None = None, **options: Any) -> _Connecting:
    """Connect to ``ws://HOST:PORT/sync``: ``client = await connect(url)`` or ``async with``.

    ``token`` is a REST API token sent as ``Authorization: Token <key>``;
    ``options`` are the keyword options of :class:`KasagiClient`.
    """
    return _Connecting(KasagiClient(url, token=token, **options))
