"""The WebSocket endpoint ``/sync``: a thin shell around the engine.

It decodes a frame, checks the rate limit and frame size, parses it with the
pure core, and dispatches by message class through a table. A ProtocolError
becomes one ERROR frame; any other exception becomes ERROR INTERNAL and the
connection lives on. It never touches the database on the message path, so
it skips Channels' per-message ``aclose_old_connections`` thread hop and its
task-per-message receive loop (both measured as large costs under load).
Under daphne the hot messages do not even wait for the task: the fast reader
(``sync.reader``) hands each frame to :meth:`SyncConsumer.on_frame` in the
socket's data callback, which runs an update, MESSAGE, PING or RESYNC there
and then when nothing is queued before it and the store completes it without
waiting (the in-memory store); the rest goes to the task, in order.

It is also its own handshake stack: ``SyncConsumer.as_asgi`` checks the path
and the Origin rule (§7) before a consumer exists, and the consumer asks the
``authenticate`` callable for the user once, at connect, then keeps only an
``Identity``. Channels' middleware stack (cookie → session → auth → token →
router) kept a scope copy and a suspended coroutine per layer alive for the
whole life of every connection; at 10,000 idle sockets that was the largest
share of the server's memory. The instance has ``__slots__`` for the same
reason.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from types import CoroutineType
from typing import Any

from asgiref.sync import markcoroutinefunction
from channels.exceptions import StopConsumer

from .compat import DaphneFrameReader, compress_frames, offer_deflate
from .core.changes import Author, Change, LeaveReason
from .core.codec import JSON, JSON_DEFLATE, Codec, Inbound, codec_for
from .core.documents import wire_bytes
from .core.envelope import (
    ID_PATTERN,
    DocSync,
    DocUpdate,
    JoinRoom,
    LeaveRoom,
    Message,
    Ping,
    Resync,
    StateUpdate,
    parse_envelope,
    request_id_of,
)
from .core.errors import ErrorCode, ProtocolError
from .core.frames import doc_sync_frame, error_frame, pong_frame
from .directory import ANONYMOUS, Identity, may_join
from .documents import documents_of
from .hub import Pending, RoomFanout, Writer, now_ms
from .metrics import METRICS
from .origin import handshake_allowed, refuse
from .ratelimit import TokenBucket
from .reader import reader_for, resume
from .runtime import Runtime, get_runtime
from .store.base import ChangeHistory
from .writer import writer_for

#: run in the socket's data callback whatever the store (they never wait)
INLINE_ALWAYS: frozenset[type] = frozenset({Ping, Resync})
#: ... and these too when the store's update/message never wait (``inline_updates``)
INLINE_WITH_STORE: frozenset[type] = INLINE_ALWAYS | {StateUpdate, Message}
#: what ``_parse`` returns for a client over its rate limit's abuse threshold
_ABUSIVE = object()

logger = logging.getLogger(__name__)

POLICY_VIOLATION = 1008

#: scope -> the Django user of the handshake (or None / AnonymousUser).
Authenticate = Callable[[dict[str, Any]], Awaitable[Any]]
AsgiApp = Callable[[dict[str, Any], Any, Any], Coroutine[Any, Any, None]]


def identity_of(scope: dict[str, Any]) -> Identity:
    user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return ANONYMOUS
    return Identity(user_id=user.pk, username=user.get_username(), is_staff=user.is_staff)


async def user_in_scope(scope: dict[str, Any]) -> Any:
    """The default ``authenticate``: a user put in the scope by auth middleware."""
    return scope.get("user")


def route_path(scope: dict[str, Any]) -> str:
    """The request path below the server's ``root_path``, as Channels' URLRouter sees it."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class SyncConsumer:
    """One WebSocket connection (the hub's ``Member``)."""

    __slots__ = (
        "__weakref__", "author", "bucket", "busy", "closed_room", "codec", "fanout", "inbound",
        "inline_types", "lag", "needs_full_state", "player_id", "reader", "room_id", "runtime",
        "session_token", "synced_version", "who", "writer",
    )

    player_id: str | None
    session_token: str | None
    writer: Writer
    codec: Codec
    #: decodes this connection's frames (bin1 keeps the names the client announced)
    inbound: Inbound
    synced_version: int
    lag: list[Pending] | None
    needs_full_state: bool
    runtime: Runtime
    who: Identity
    #: §15: the author of this socket's changes (its user, when logged in)
    author: Author
    room_id: str | None
    closed_room: str | None
    fanout: RoomFanout | None
    bucket: TokenBucket
    #: the fast reader (daphne), or None: frames come through ``receive()``
    reader: DaphneFrameReader | None
    #: the task is handling a message: a frame arriving now must queue behind it
    busy: bool
    inline_types: frozenset[type]

    @classmethod
    def as_asgi(cls, *, authenticate: Authenticate = user_in_scope, path: str = "/sync") -> AsgiApp:
        """The ASGI app: path and Origin checks, then one consumer per connection.

        A plain function returning the consumer's coroutine, so no wrapper frame
        stays suspended per connection. A foreign Origin or another path is
        refused with HTTP 403.
        """

        def app(scope: dict[str, Any], receive: Any, send: Any) -> Coroutine[Any, Any, None]:
            if (
                scope["type"] != "websocket"
                or route_path(scope) != path
                or not handshake_allowed(scope)
            ):
                return refuse(receive, send)
            return cls().run(scope, receive, send, authenticate)

        app._asgi_single_callable = True  # type: ignore[attr-defined]
        markcoroutinefunction(app)  # an ASGI 3 app to servers that inspect it (uvicorn)
        return app

    async def run(
        self, scope: dict[str, Any], receive: Any, send: Any, authenticate: Authenticate
    ) -> None:
        """A plain receive loop: one frame at a time, no task per message, no channel layer."""
        try:
            message = await receive()
            if message["type"] != "websocket.connect":
                return
            await self.websocket_connect(scope, send, authenticate)
            del scope, send  # the connection keeps no scope: only what it needs, in slots
            events = self._events
            while True:
                message = await receive()
                handler = events.get(message["type"])
                if handler is not None:
                    self.busy = True
                    try:
                        await handler(self, message)
                    finally:
                        self.busy = False
        except StopConsumer:
            pass

    # -- ASGI events -----------------------------------------------------

    async def websocket_connect(
        self, scope: dict[str, Any], send: Any, authenticate: Authenticate
    ) -> None:
        self.who = who = identity_of({"user": await authenticate(scope)})
        self.author = Author.player(who.user_id, who.username)
        self.runtime = runtime = get_runtime()
        self.room_id = None
        self.closed_room = None
        self.fanout = None
        self.player_id = None
        self.session_token = None
        self.synced_version = -1
        self.lag = None
        self.needs_full_state = False
        settings = runtime.settings
        self.bucket = TokenBucket(settings.rate_limit, settings.rate_burst)
        self.codec = codec = codec_for(scope.get("subprotocols"))
        self.inbound = codec.inbound()
        subprotocol = codec.name if codec.binary else None
        deflate = codec is JSON and offer_deflate(send)  # JSON clients offering it
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        self.writer = writer_for(send)
        if deflate and compress_frames(self.writer, send):
            self.codec = JSON_DEFLATE
        self.busy = False
        self.inline_types = (
            INLINE_WITH_STORE if getattr(runtime.store, "inline_updates", False)
            else INLINE_ALWAYS)
        self.reader = reader_for(send, self.on_frame)
        METRICS.connections += 1

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes") or b""
        METRICS.messages_queued += 1
        parsed = self._parse(raw)
        if parsed is _ABUSIVE:
            await self.writer.close(POLICY_VIOLATION, "rate limit exceeded")
        elif parsed is not None:
            await self._dispatch(parsed, raw)

    async def _queued_parsed(self, message: dict[str, Any]) -> None:
        """A frame ``on_frame`` parsed but left to the task (it may wait)."""
        METRICS.messages_queued += 1
        await self._dispatch(message["parsed"], message["raw"])

    async def _queued_resume(self, message: dict[str, Any]) -> None:
        """A message ``on_frame`` began that waited for something after all."""
        await resume(message["coro"], message["awaiting"])

    def on_frame(self, raw: str | bytes) -> bool:
        """The fast reader's handler: one whole client frame, in the socket's data callback.

        Runs the message now if it is one that completes without waiting
        (``inline_types``); otherwise parses it and leaves the rest to the task,
        behind whatever the task holds. False when the task is handling a
        message: the reader queues the frame instead, so order is kept.
        """
        if self.busy:
            return False
        try:
            parsed = self._parse(raw)
            if parsed is None:
                return True
            if parsed is _ABUSIVE:
                self._run_inline(self.writer.close(POLICY_VIOLATION, "rate limit exceeded"))
            elif type(parsed) in self.inline_types:
                METRICS.messages_inline += 1
                self._dispatch_inline(parsed, raw)
            else:
                assert self.reader is not None
                self.reader.defer({"type": "kasagi.parsed", "parsed": parsed, "raw": raw})
        except Exception:  # nothing may escape into the socket's callback
            logger.exception("inline frame failed")
        return True

    def _run_inline(self, step: Coroutine[Any, Any, None]) -> None:
        """Run ``step`` to its end here, or, if it waits after all, hand it to the task."""
        try:
            awaiting = step.send(None)
        except StopIteration:
            return
        assert self.reader is not None
        self.reader.defer({"type": "kasagi.resume", "coro": step, "awaiting": awaiting})

    def _dispatch_inline(self, parsed: Any, raw: str | bytes) -> None:
        """``_run_inline(self._dispatch(parsed, raw))`` without the ``_dispatch``
        coroutine: the handler's own coroutine runs here, refusals answered as
        ``_dispatch`` answers them; one that waits after all finishes in the task,
        still inside ``_dispatch``."""
        try:
            step = self._handlers[type(parsed)](self, parsed)  # type: ignore[operator]
            if type(step) is not CoroutineType:
                self._run_inline(self._dispatch(parsed, raw, step))
                return
            try:
                awaiting = step.send(None)
            except StopIteration:
                return
        except ProtocolError as exc:
            self._refused(exc, parsed)
            return
        except Exception:
            self._failed(raw)
            return
        self._run_inline(self._dispatch(parsed, raw, resume(step, awaiting)))

    def _parse(self, raw: str | bytes) -> Any:
        """Rate limit, size and envelope checks: the message, ``_ABUSIVE``, or None
        when the frame was answered with an ERROR instead."""
        try:
            if not self.bucket.take():
                if self.bucket.abusive():
                    return _ABUSIVE
                raise self._unparsed(raw, ErrorCode.RATE_LIMITED, "too many messages; dropped")
            limits = self.runtime.limits
            limit = limits.max_frame_bytes
            if len(raw) > limit // 4 and _byte_length(raw) > limit:
                raise self._unparsed(
                    raw, ErrorCode.PAYLOAD_TOO_LARGE, f"frame exceeds {limit} bytes")
            parsed = parse_envelope(self.inbound.decode(raw), limits)
        except ProtocolError as exc:
            self.send_error(exc)
            return None
        except Exception:
            logger.exception("parsing a frame failed")
            self.send_error(ProtocolError(
                ErrorCode.INTERNAL, "internal error; the message had no effect"))
            return None
        METRICS.messages_in[parsed.TYPE] += 1
        return parsed

    async def _dispatch(
        self, parsed: Any, raw: str | bytes, step: Awaitable[None] | None = None,
    ) -> None:
        """Run the message's handler (or finish ``step``, its awaitable, already made)."""
        try:
            if step is None:
                step = self._handlers[type(parsed)](self, parsed)  # type: ignore[operator]
            await step  # type: ignore[misc]
        except ProtocolError as exc:
            self._refused(exc, parsed)
        except Exception:
            self._failed(raw)

    def _refused(self, exc: ProtocolError, parsed: Any) -> None:
        """A handler's refusal as an ERROR echoing the message's request and room."""
        if exc.request_id is None:
            exc.request_id = parsed.request_id
        if exc.room_id is None:
            exc.room_id = parsed.room_id
        self.send_error(exc)

    def _failed(self, raw: str | bytes) -> None:
        """A handler failed (call it in the ``except``): logged, ERROR INTERNAL."""
        logger.exception("handler failed")
        error = self._unparsed(
            raw, ErrorCode.INTERNAL, "internal error; the message had no effect")
        self.send_error(error)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        METRICS.connections -= 1
        try:
            await self._detach_from_room(disconnected=True)
        except Exception:
            logger.exception("disconnect cleanup failed")
        raise StopConsumer

    _events = {
        "websocket.receive": websocket_receive,
        "websocket.disconnect": websocket_disconnect,
        "kasagi.parsed": _queued_parsed,
        "kasagi.resume": _queued_resume,
    }

    # -- message handlers ------------------------------------------------

    async def on_join(self, message: JoinRoom) -> None:
        if self.room_id is not None:
            raise ProtocolError(
                ErrorCode.ALREADY_IN_ROOM, f"already in room {self.room_id}; leave first"
            )
        runtime = self.runtime
        store = runtime.store
        config = await store.activate(
            message.room_id, who=self.who, create=runtime.settings.auto_create_rooms
        )
        if not may_join(config, self.who, allow_anonymous=runtime.settings.allow_anonymous):
            raise ProtocolError(ErrorCode.FORBIDDEN, "you may not join this room")
        if self.room_id is not None:  # a second JOIN raced the first across the await
            raise ProtocolError(ErrorCode.ALREADY_IN_ROOM, f"already in room {self.room_id}")
        resumed = False
        missed: list[Change] | None = None
        holder = store.fanout(message.room_id)
        holder.hold(self)  # events sent while the join commits come after the FULL_STATE
        try:
            if not message.spectate:
                result = await store.join(
                    message.room_id, message.fields, who=self.who,
                    session_token=message.session_token, connection=self,
                )
                self.player_id, self.session_token, resumed = (
                    result.player_id, result.session_token, result.resumed)
                self.author = Author.player(self.who.user_id, self.who.username, result.player_id)
                if resumed:
                    missed = await self._missed(message)
        except BaseException:
            holder.release(self, deliver=False)
            raise
        self.room_id, self.closed_room = message.room_id, None
        self.fanout = fanout = store.fanout(message.room_id)
        fanout.attach(self)
        if missed is None or not fanout.send_resumed(
            self, message.since_version, message.epoch, missed,  # type: ignore[arg-type]
            request_id=message.request_id,
        ):
            fanout.send_full_state(self, resumed=resumed, request_id=message.request_id)
        holder.release(self, deliver=True)

    async def _missed(self, message: JoinRoom) -> list[Change] | None:
        """§14: the changes a resuming client missed since the state it still holds,
        when it named one (``sinceVersion`` and ``epoch``) in the room's epoch and the
        room's change log still holds them all; None: it gets a FULL_STATE."""
        since, epoch = message.since_version, message.epoch
        store = self.runtime.store
        if since is None or epoch is None or not isinstance(store, ChangeHistory):
            return None  # (a store without recovery: FULL_STATE)
        if epoch != store.epoch(message.room_id):
            return None
        return await store.recent_changes(message.room_id, since)

    async def on_leave(self, message: LeaveRoom) -> None:
        self._require_room(message.room_id)
        await self._detach_from_room(disconnected=False)

    # on_update and on_message check, then hand back the store's coroutine for
    # ``_dispatch`` to await (their refusals raise there all the same): one coroutine
    # fewer per inline message
    # (``_require_room`` is called only when the room is not this socket's: its refusal)
    def on_update(self, message: StateUpdate) -> Awaitable[None]:
        room_id = message.room_id
        if self.room_id != room_id:
            self._require_room(room_id)
        player_id = self.player_id
        if player_id is None:
            raise ProtocolError(ErrorCode.FORBIDDEN, "spectators cannot update state")
        return self.runtime.store.update(room_id, player_id, message, by=self.author)

    def on_message(self, message: Message) -> Awaitable[None]:
        room_id = message.room_id
        if self.room_id != room_id:
            self._require_room(room_id)
        player_id = self.player_id
        if player_id is None:
            raise ProtocolError(ErrorCode.FORBIDDEN, "spectators cannot send messages")
        return self.runtime.store.message(room_id, player_id, message)

    async def on_resync(self, message: Resync) -> None:
        self._require_room(message.room_id)
        assert self.fanout is not None
        self.fanout.send_full_state(self, resumed=False, request_id=message.request_id)

    async def on_ping(self, message: Ping) -> None:
        self._send_frame(pong_frame(now_ms(), message.request_id, message.room_id))

    async def on_doc_sync(self, message: DocSync) -> None:
        self._require_room(message.room_id)
        store = documents_of(self.runtime.store)
        update, vector = await store.doc_sync(message.room_id, message.doc_id,
                                              message.state_vector)
        binary = self.codec.binary
        self._send_frame(doc_sync_frame(
            message.room_id, message.doc_id, wire_bytes(update, binary),
            wire_bytes(vector, binary), timestamp=now_ms(), request_id=message.request_id,
        ))

    async def on_doc_update(self, message: DocUpdate) -> None:
        self._require_room(message.room_id)
        if self.player_id is None:
            raise ProtocolError(ErrorCode.FORBIDDEN, "spectators cannot update documents")
        await documents_of(self.runtime.store).doc_update(
            message.room_id, self.player_id, message.doc_id, message.update)

    _handlers = {
        JoinRoom: on_join,
        LeaveRoom: on_leave,
        StateUpdate: on_update,
        Message: on_message,
        Resync: on_resync,
        Ping: on_ping,
        DocSync: on_doc_sync,
        DocUpdate: on_doc_update,
    }

    # -- hub callbacks and helpers ---------------------------------------

    def on_detached(self, room_id: str, reason: str) -> None:
        """The hub removed us (kicked, room closed, or resumed on another socket)."""
        if self.room_id == room_id:
            self.room_id, self.fanout = None, None
            self.player_id = self.session_token = None
            if reason == LeaveReason.CLOSED.value:
                self.closed_room = room_id

    def _require_room(self, room_id: str) -> None:
        if self.room_id != room_id:
            if self.closed_room == room_id:
                raise ProtocolError(ErrorCode.ROOM_CLOSED, "the room was closed")
            raise ProtocolError(ErrorCode.NOT_IN_ROOM, f"not in room {room_id}")

    async def _detach_from_room(self, *, disconnected: bool) -> None:
        room_id, player_id = self.room_id, self.player_id
        if room_id is None:
            return
        if self.fanout is not None:
            self.fanout.detach(self)
        self.room_id, self.fanout = None, None
        self.player_id = self.session_token = None
        if player_id is None:
            return
        store = self.runtime.store
        if disconnected:
            await store.disconnect(room_id, player_id, self)
        else:
            await store.leave(room_id, player_id, LeaveReason.LEFT, by=self.author)

    def send_error(self, error: ProtocolError) -> None:
        METRICS.errors[error.code.value] += 1
        self._send_frame(error_frame(error, now_ms()))

    def _send_frame(self, frame: dict[str, Any]) -> None:
        codec = self.codec
        self.writer.write(codec.encode(frame), codec.binary)

    def _unparsed(self, raw: str | bytes, code: ErrorCode, message: str) -> ProtocolError:
        """An error about a frame we did not (fully) handle, echoing what is valid of it."""
        try:
            data = self.inbound.decode(raw)
        except ProtocolError:
            data = None
        room_id = data.get("roomId") if type(data) is dict else None
        return ProtocolError(
            code, message, request_id=request_id_of(data),
            room_id=room_id if type(room_id) is str and ID_PATTERN.fullmatch(room_id) else None,
        )


def _byte_length(raw: str | bytes) -> int:
    return len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
