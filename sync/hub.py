"""Per-process fan-out: batch each room's changes per tick, encode once, send to all.

A room's changes arrive in version order (from the in-memory store, or from
the Redis stream in a cluster). They wait in ``RoomFanout.items`` until the
tick; then every member gets one DELTA_UPDATE composed from the version it
already has, encoded once per distinct starting version (almost always one),
the same bytes for all. Ticks are a fixed grid (``loop.time() // tick``), at
most one flush per room per tick: the first change in a tick with no flush yet
is flushed at once (``call_soon``), later ones wait for the next tick's start.
So batching costs nothing when there is nothing to batch. (Measuring "a tick
since the last flush" instead made a room whose changes come about one tick
apart, like workload "light", wait half a tick on average: any jitter pushed a
change just inside the window of the previous flush.)

Per member the stream is gapless and duplicate-free by construction: each
member records the version of the last state-changing frame (or FULL_STATE)
it was sent, skips items at or below it, and a FULL_STATE seals the open
batch so no later batch straddles its version.

A slow reader (its socket still owes more than ``LAG_HIGH`` bytes) is not
written to; its pending changes are composed into one patch (bounded: past
``LAG_MAX_ITEMS`` it is marked for a fresh FULL_STATE instead), and it
catches up on the first tick its socket has drained below ``LAG_LOW``.

Events (§11, EVENT) are not state and take no part in the chain. One that
arrives while the room has no pending change is sent at once. Otherwise
every member must get the changes made before it first, and when the event
goes depends on who sent it. A server's event (room code, the public API:
``sender`` None) flushes the pending tick first, then goes, so the changes
the code makes after it wait for the next tick: a handler that scores,
announces ``round.over`` and starts the next round is seen in that order. A
player's relayed event waits in ``RoomFanout.events`` and goes out right
after the tick's state frames: a chat-heavy room keeps one DELTA_UPDATE per
tick (flushing per relayed event cost 1.7 times the frames and 3.5 times
the p99 at workload C plus 5 MESSAGEs/s per client), and the changes that
other players made in the same tick, concurrent with the message, may
arrive first. An event is encoded
once per codec, whatever the number of members. A lagging member (its
backlog still owes older changes) is not sent events: they are ephemeral.

Views (§13, ``sync.core.views``): each member gets its view of the room, as
its room type decides (default: other players' ``_`` fields left out). Each
change's *audience* (the players who see it differently from everyone else,
None for almost every change) is computed once, when it is published; a
tick's frames are built and encoded once per (starting version, view,
codec), where a member's view is its player id if it is in the tick's
audience and "everyone else" otherwise — so a room without private fields
still costs one encoding per codec per tick. A change a member cannot see
sends it nothing by itself: its versions wait (``RoomFanout.unsent``) and are
folded into the member's next frame (``sync.core.views.member_frames``).
The per-member work of a tick is most of a large room's flush: a member in
step whose view does not depend on who it is (no private field in the tick)
finds its frames by codec, last sent version and place alone
(``RoomFanout._deliver_all``).

A room type with an *interest* (value-dependent views: the ``world`` grid)
also has its places here (``RoomFanout.index``, a
``sync.core.views.InterestIndex`` moved over each tick's changes at the
flush): a member's frames then depend on where it stands (the cells it moved
through in the tick), so members standing in the same cell share them.
Recovery by version and a slow member's backlog are not composed under
places: such a member gets a FULL_STATE (its view now).

Nothing here awaits: a flush is one synchronous pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .core.bin_codec import RoomTable
from .core.changelog import chain_between
from .core.changes import Change, ChangeKind, LeaveReason
from .core.codec import Codec
from .core.errors import ErrorCode, ProtocolError
from .core.frames import error_frame, event_frame, full_state_frame, resumed_frame
from .core.merge_patch import Composer, NotComposable, compose
from .core.room_types import RoomType
from .core.views import (
    ChainBreak,
    InterestBatch,
    InterestIndex,
    ViewRule,
    interest_frames,
    member_frames,
    union,
    view_state,
)
from .metrics import METRICS

logger = logging.getLogger(__name__)

LAG_HIGH = 512 * 1024
LAG_LOW = 64 * 1024
LAG_MAX_ITEMS = 64
#: a tick's DELTAs are composed by copying (``compose``) up to this many, then in
#: place (``Composer``): copying costs the run's size per change, which only a
#: large room's tick (hundreds of one-player changes) makes matter
IN_PLACE_AFTER = 32
#: ``ChangeKind.DELTA`` read once: an enum member looked up on its class costs ~0.2 µs
_DELTA = ChangeKind.DELTA

StateSource = Callable[[], tuple[int, dict[str, Any]]]
#: the room's epoch (§14), None where the store has none
EpochSource = Callable[[], str | None]


class Writer(Protocol):
    def write(self, data: bytes, binary: bool = False) -> None: ...
    def backlog(self) -> int: ...
    async def close(self, code: int, reason: str) -> None: ...


class Member(Protocol):
    """What the hub needs of a connection (the consumer implements it)."""

    player_id: str | None
    session_token: str | None
    writer: Writer
    #: JSON or MessagePack, chosen at the handshake
    codec: Codec
    #: Version of the last FULL_STATE or state-changing frame this member was sent.
    synced_version: int
    #: Changes held back while the member's socket is slow (None: not lagging).
    lag: list[Pending] | None
    #: Set when a slow member must get a FULL_STATE instead of its backlog.
    needs_full_state: bool

    def on_detached(self, room_id: str, reason: str) -> None: ...


@dataclass(slots=True)
class Pending:
    """A change waiting for the tick; consecutive DELTAs are composed in place."""

    kind: ChangeKind | None  # None: the room was closed
    base_version: int
    version: int
    patch: dict[str, Any]
    payload: dict[str, Any] | None = None
    sealed: bool = False
    #: who sees this change differently from everyone else (§13); None: nobody
    audience: frozenset[str] | None = None
    #: composes a long tick's later DELTAs into ``patch`` in place (``publish``)
    composer: Composer | None = None
    #: ``patch["players"]`` when ``compose`` made it (a copy only this item holds): a
    #: later change of one other player is added to it in place (``publish``)
    owned: dict[str, Any] | None = None

    @classmethod
    def of(cls, change: Change, rule: ViewRule | None = None) -> Pending:
        """The change with its audience under ``rule`` (default: the private-field rule)."""
        return cls(change.kind, change.base_version, change.version, change.patch, change.payload,
                   audience=(rule or _DEFAULT_VIEW).view_audience(change.patch))


#: the view rule of a fan-out whose store did not say its room type
_DEFAULT_VIEW: RoomType = RoomType()


@dataclass(frozen=True, slots=True)
class OutEvent:
    """An EVENT for some of a room's members (``to`` None: all, but ``exclude``)."""

    kind: str
    data: Any
    sender: str | None
    to: frozenset[str] | None = None
    exclude: str | None = None

    def wants(self, member: Member) -> bool:
        player_id = member.player_id
        if self.to is not None:
            return player_id in self.to
        return self.exclude is None or player_id != self.exclude


def _no_epoch() -> str | None:
    return None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class RoomFanout:
    """The members of one room in this process and its pending changes."""

    def __init__(
        self, hub: Hub, room_id: str, state_source: StateSource,
        epoch_source: EpochSource | None = None, *, room_type: RoomType | None = None,
    ) -> None:
        self.hub = hub
        self.room_id = room_id
        self.state_source = state_source
        #: decides each member's view (§13)
        self.room_type: RoomType = room_type or _DEFAULT_VIEW
        #: the places of the room's objects (§13), when its type has an interest
        self.index: InterestIndex | None = None
        self.reindex()
        #: id(member) → version of the last frame it was sent, while that is below its
        #: ``synced_version`` (versions it could not see, folded into its next frame)
        self.unsent: dict[int, int] = {}
        self.epoch_source: EpochSource = epoch_source or _no_epoch
        #: (§16) the room's document ids for FULL_STATE; the store sets it
        self.docs_source: Callable[[], list[str]] = list
        self.members: dict[int, Member] = {}
        self.items: list[Pending] = []
        self.events: list[OutEvent] = []
        #: inside ``flush`` (a member's detach can make room code send an event then)
        self.flushing = False
        #: connections joining (between JOIN_ROOM and their FULL_STATE): their events
        self.holding: dict[int, list[OutEvent]] = {}
        self.handle: asyncio.Handle | None = None
        self.flushed_tick = -1  # the tick (grid index) of the last flush that sent changes
        self.phase = hub.next_phase()  # rooms' grids are offset so their ticks do not coincide
        self.lagging = 0
        #: the room's bin1 name table, from its first bin1 member's FULL_STATE on
        self.table: RoomTable | None = None

    def reindex(self) -> None:
        """(Re)build the places from the room's state (pending changes are not in it:
        call it with none pending)."""
        interest = self.room_type.interest
        self.index = None if interest is None else InterestIndex(
            interest, *self.state_source())

    # -- membership ------------------------------------------------------

    def attach(self, member: Member) -> None:
        self.members[id(member)] = member
        member.lag = None
        member.needs_full_state = False

    def hold(self, member: Member) -> None:
        """Keep the events for a connection that is joining: an event sent while its
        join commits (a welcome from ``on_join``) reaches it after its FULL_STATE."""
        self.holding[id(member)] = []

    def release(self, member: Member, *, deliver: bool) -> None:
        """End a hold; ``deliver``: send what was held (after the FULL_STATE)."""
        held = self.holding.pop(id(member), None)
        if deliver and held:
            self._send_events(held, only=member)

    def detach(self, member: Member) -> None:
        self.unsent.pop(id(member), None)
        if self.members.pop(id(member), None) is not None and member.lag is not None:
            member.lag = None
            self.lagging -= 1

    def send_full_state(
        self, member: Member, *, resumed: bool, request_id: str | int | None = None
    ) -> None:
        """FULL_STATE at the current version; later changes start a new batch."""
        version, state = self.state_source()
        index = self.index
        if index is not None and index.version == version:  # look the view up by place
            state = index.view(self.room_type, state, member.player_id)
        else:
            state = view_state(self.room_type, state, member.player_id)
        frame = full_state_frame(
            self.room_id, version, state,
            player_id=member.player_id, session_token=member.session_token,
            resumed=resumed, timestamp=now_ms(), request_id=request_id,
            epoch=self.epoch_source(), docs=self.docs_source(),
        )
        self.hub.write(member, self._encode(member.codec, frame))
        self._synced(member, version)

    def send_resumed(
        self, member: Member, since: int, epoch: str | None, changes: list[Change], *,
        request_id: str | int | None = None,
    ) -> bool:
        """RESUMED at ``since`` (§14), then ``changes`` composed up to the current
        version, through the same ``_Batch`` as a tick's frames. False, with nothing
        sent, when the epoch is not the room's or ``changes`` do not chain from
        ``since`` to the current version (the caller sends FULL_STATE)."""
        version = self.state_source()[0]
        current_epoch = self.epoch_source()
        chain = chain_between(changes, since, version)
        if self.index is not None:  # views by place are not kept for past versions
            return False
        if chain is None or epoch is None or epoch != current_epoch:
            return False
        assert member.player_id is not None and member.session_token is not None
        timestamp = now_ms()
        self.hub.write(member, self._encode(member.codec, resumed_frame(
            self.room_id, since, player_id=member.player_id,
            session_token=member.session_token, epoch=current_epoch,
            timestamp=timestamp, request_id=request_id,
        )))
        self._synced(member, since)
        self.send_changes(member, chain)
        return True

    def send_changes(self, member: Member, changes: list[Change]) -> None:
        """Send ``member`` its view (§13) of ``changes``, continuing its chain from
        ``synced_version``: the same frames a tick would send (changes it already
        has are skipped; invisible ones are folded into its next frame)."""
        rule = self.room_type
        if self.index is not None:  # places are kept for the current version only
            self.send_full_state(member, resumed=False)
            return
        batch = _Batch(self.room_id, [Pending.of(c, rule) for c in changes], now_ms(), rule,
                       table=self.table)
        start = batch.start_for(member.synced_version)
        if start is not None:
            self._send_batch(member, batch, start)

    def _encode(self, codec: Codec, frame: dict[str, Any]) -> bytes:
        """A room frame in ``codec``; bin1 goes through the room's name table."""
        if not codec.tabled:
            return codec.encode(frame)
        if self.table is None:
            self.table = RoomTable(now_ms())
        return self.table.encode(frame)

    def _send_batch(self, member: Member, batch: _Batch, start: int) -> None:
        """Write ``member``'s frames of ``batch`` from ``start`` and move its chain on."""
        unsent = self.unsent  # almost always empty: then not looked up
        sent = unsent.get(id(member), member.synced_version) if unsent else member.synced_version
        frames, sent, seen, resync = batch.frames_from(
            start, member.codec, sent, member.player_id)
        write = self.hub.write
        for data in frames:
            write(member, data)
        member.synced_version = seen
        if sent < seen:
            unsent[id(member)] = sent
        elif unsent:
            unsent.pop(id(member), None)
        if resync:  # its own player joined or left: where it stands is new (views by place)
            if member.player_id in (self.state_source()[1].get("players") or {}):
                self.send_full_state(member, resumed=False)
            else:  # it left: unless detached in this flush (kicked), a FULL_STATE next tick
                member.needs_full_state = True
                if member.lag is None:
                    member.lag = []
                    self.lagging += 1

    def _synced(self, member: Member, version: int) -> None:
        """The member holds ``version``: later changes start a new batch."""
        member.synced_version = version
        self.unsent.pop(id(member), None)
        if member.lag is not None:
            member.lag = None
            self.lagging -= 1
        member.needs_full_state = False
        if self.items:
            self.items[-1].sealed = True

    def resync_all(self) -> None:
        """FULL_STATE to every member after the room's state was reloaded (cluster store).

        Pending changes are dropped: the new state already contains (or replaces) them.
        """
        self.items.clear()
        self.reindex()
        for member in list(self.members.values()):
            self.send_full_state(member, resumed=False)

    # -- changes ---------------------------------------------------------

    def publish(self, change: Change) -> None:
        items = self.items
        audience = self.room_type.view_audience(change.patch)
        if items and change.kind is _DELTA:
            last = items[-1]
            if (
                last.kind is _DELTA
                and not last.sealed
                and last.version == change.base_version
            ):
                try:
                    composer = last.composer
                    if composer is None and last.version - last.base_version < IN_PLACE_AFTER:
                        owned = last.owned
                        patch = change.patch
                        added = False
                        if owned is not None and len(patch) == 1:
                            players = patch.get("players")
                            if type(players) is dict and len(players) == 1:
                                ((player_id, part),) = players.items()
                                if player_id not in owned:
                                    # what compose(last.patch, patch) gives, without
                                    # copying the tick's players again (workload C)
                                    owned[player_id] = part
                                    added = True
                        if not added:
                            first = last.patch
                            last.patch = compose(first, patch)
                            last.owned = (
                                last.patch["players"]
                                if type(first.get("players")) is dict
                                and type(patch.get("players")) is dict else None)
                    else:
                        if composer is None:
                            composer = last.composer = Composer(last.patch)
                        composer.add(change.patch)
                        last.patch = composer.patch
                    last.version = change.version
                    if audience is not None:
                        last.audience = union(last.audience, audience)
                    if self.handle is None:  # (else the tick is scheduled already)
                        self._schedule()
                    return
                except NotComposable:
                    pass
        items.append(Pending(change.kind, change.base_version, change.version, change.patch,
                             change.payload, audience=audience))
        if self.handle is None:
            self._schedule()

    def publish_event(self, event: OutEvent) -> None:
        """Send an EVENT after every change published before it (see the module doc):
        a server's event flushes the pending tick first, a player's waits for it."""
        if not self.items:
            self._send_events([event])
            return
        self.events.append(event)
        if event.sender is None and not self.flushing:
            if self.handle is not None:
                self.handle.cancel()
            self.flush()
        else:
            self._schedule()

    def _send_events(self, events: list[OutEvent], *, only: Member | None = None) -> None:
        timestamp = now_ms()
        members = list(self.members.values()) if only is None else [only]
        for event in events:
            if only is None:
                for held in self.holding.values():
                    if len(held) < LAG_MAX_ITEMS:
                        held.append(event)
            encoded: dict[Codec, bytes] = {}
            frame = None
            for member in members:
                if member.lag is not None or member.needs_full_state or not event.wants(member):
                    continue
                codec = member.codec
                data = encoded.get(codec)
                if data is None:
                    if frame is None:
                        frame = event_frame(
                            self.room_id, event.kind, event.data, event.sender, timestamp)
                    data = encoded[codec] = self._encode(codec, frame)
                self.hub.write(member, data)
                METRICS.events_out += 1

    def close(self) -> None:
        """After what is pending: ERROR ROOM_CLOSED to every member, then detach all."""
        version = self.items[-1].version if self.items else self.state_source()[0]
        self.items.append(Pending(None, version, version, {}))
        self._schedule()

    def _schedule(self) -> None:
        if self.handle is not None:
            return
        hub = self.hub
        current = hub.current_tick(self.phase)
        if current > self.flushed_tick:
            self.handle = hub.loop.call_soon(self.flush)
        else:
            self.handle = hub.loop.call_at((current + 1) * hub.tick + self.phase, self.flush)

    # -- the tick --------------------------------------------------------

    def flush(self) -> None:
        if self.flushing:
            return  # re-entered (a detach during the flush): the scheduled flush runs later
        self.flushing = True
        try:
            self._flush()
        finally:
            self.flushing = False

    def _flush(self) -> None:
        self.handle = None
        started = time.perf_counter()
        items, self.items = self.items, []
        events, self.events = self.events, []
        if items:
            self.flushed_tick = self.hub.current_tick(self.phase)
        try:
            batch = _Batch(self.room_id, items, now_ms(), self.room_type,
                           self._places(items) if self.index is not None and items else None,
                           table=self.table)
            self._deliver_all(batch)
            if items:
                METRICS.flush_members += len(self.members)
                METRICS.flush_encodings += len(batch._cache)
            if events:
                self._send_events(events)
            if items:
                self._after(items)
        except Exception:
            logger.exception("flush of room %s failed", self.room_id)
            for member in list(self.members.values()):
                member.needs_full_state = True
                self._catch_up(member)
        if self.lagging > 0 and self.handle is None:
            self.handle = self.hub.loop.call_later(self.hub.tick, self.flush)
        if items:
            METRICS.tick_seconds.observe(time.perf_counter() - started)
        if not self.members and not self.items and self.handle is None and not self.holding:
            self.hub.forget(self)

    def _places(self, items: list[Pending]) -> InterestBatch | None:
        """Move the places over this tick's changes; if they do not continue from
        the places' version, rebuild them and resync every member (FULL_STATE)."""
        assert self.index is not None
        try:
            return self.index.advance([item for item in items if item.kind is not None])
        except ChainBreak:
            logger.warning("room %s: places out of step; resyncing", self.room_id)
            self.reindex()
            for member in self.members.values():
                member.needs_full_state = True
            return None

    def _deliver_all(self, batch: _Batch) -> None:
        """``_deliver`` to every member, its common case inline: a member in step at
        the tick's start whose socket is not backed up. When the tick touches no
        private field (``_Batch.public``), such a member's frames depend only on its
        codec, the version of its last frame and, with places, its trajectory: they
        are looked up by those here, and its chain moved on as ``_send_batch`` does.
        This loop is most of the flush of a large room, and of a workload-C room."""
        base = batch.base
        places = batch.places
        send = self._send_batch
        write = self.hub.write
        unsent = self.unsent
        shared: dict[Any, tuple[list[bytes], int, int, bool]] | None = (
            {} if batch.public else None)
        for member in list(self.members.values()):
            if member.lag is not None or member.needs_full_state or (
                    member.synced_version != base):
                self._deliver(member, batch)
            elif member.writer.backlog() > LAG_HIGH:
                self._fall_behind(member, batch)
            elif shared is None:
                send(member, batch, 0)
            else:
                held = unsent.get(id(member)) if unsent else None  # its last frame's version
                codec = member.codec
                if places is not None:
                    view: Any = (codec, held, places.trajectory(member.player_id, 0))
                else:
                    view = codec if held is None else (codec, held)
                got = shared.get(view)
                if got is None:
                    got = shared[view] = batch.frames_from(
                        0, codec, base if held is None else held, member.player_id)
                frames, sent, seen, resync = got
                if resync:  # nothing done yet: _send_batch sends these and the FULL_STATE
                    send(member, batch, 0)
                    continue
                for data in frames:
                    write(member, data)
                member.synced_version = seen
                if sent < seen:
                    unsent[id(member)] = sent
                elif held is not None:
                    del unsent[id(member)]

    def _deliver(self, member: Member, batch: _Batch) -> None:
        if member.lag is not None or member.needs_full_state:
            self._add_lag(member, batch.items)
            self._catch_up(member)
            return
        start = batch.start_for(member.synced_version)
        if start is None:
            return
        if member.writer.backlog() > LAG_HIGH:
            self._fall_behind(member, batch)
            return
        self._send_batch(member, batch, start)

    def _fall_behind(self, member: Member, batch: _Batch) -> None:
        """The member's socket is backed up: hold its changes until it drains."""
        member.lag = []
        self.lagging += 1
        self._add_lag(member, batch.items)

    def _add_lag(self, member: Member, items: list[Pending]) -> None:
        if member.needs_full_state:
            return
        if member.lag is None:
            member.lag = []
            self.lagging += 1
        if self.index is not None:  # a backlog is not kept under places: FULL_STATE
            member.needs_full_state = True
            member.lag.clear()
            return
        lag = member.lag
        for item in items:
            if item.kind is None or item.version <= member.synced_version:
                continue
            last = lag[-1] if lag else None
            if last is not None and last.kind is _DELTA and item.kind is _DELTA:
                try:
                    lag[-1] = Pending(last.kind, last.base_version, item.version,
                                      compose(last.patch, item.patch),
                                      audience=union(last.audience, item.audience))
                    continue
                except NotComposable:
                    pass
            lag.append(Pending(item.kind, item.base_version, item.version, item.patch,
                               item.payload, audience=item.audience))
        if len(lag) > LAG_MAX_ITEMS:
            member.needs_full_state = True
            lag.clear()

    def _catch_up(self, member: Member) -> None:
        """Send a slow member what it missed once its socket has drained."""
        if member.writer.backlog() > LAG_LOW:
            return
        if member.needs_full_state:
            self.send_full_state(member, resumed=False)
            return
        lag = member.lag or []
        batch = _Batch(self.room_id, lag, now_ms(), self.room_type, table=self.table)
        start = batch.start_for(member.synced_version)
        if start is not None:
            self._send_batch(member, batch, start)
        if member.lag is not None:
            member.lag = None
            self.lagging -= 1

    def _after(self, items: list[Pending]) -> None:
        """Detach kicked players and, on close, everybody, once they were told."""
        for item in items:
            if item.kind is None:
                closed = error_frame(
                    ProtocolError(ErrorCode.ROOM_CLOSED, "the room was closed",
                                  room_id=self.room_id),
                    now_ms(),
                )
                for member in list(self.members.values()):
                    self.hub.write(member, member.codec.encode(closed))
                    self.detach(member)
                    member.on_detached(self.room_id, LeaveReason.CLOSED.value)
            elif (item.kind is ChangeKind.LEFT and item.payload
                  and item.payload["reason"] == LeaveReason.KICKED):
                for member in list(self.members.values()):
                    if member.player_id == item.payload["playerId"]:
                        self.detach(member)
                        member.on_detached(self.room_id, LeaveReason.KICKED.value)


class _Batch:
    """One flush's items; frames are built per (starting index, last sent version,
    view) and encoded once per codec in use (JSON, MessagePack, bin1 through the
    room's name table, which learns the batch's names first), and cached: every
    member starting at the same place with the same view and codec is sent the
    same bytes object. A member's view is its player id when it is in the
    audience of the batch's changes, else None ("everyone else", spectators
    included): without private fields, that is one view for the whole room.

    With places (``places``, a room type with an interest), a view is also where
    the member stands: its place before ``items[start]`` and each item that moves
    it (``InterestBatch.trajectory``), so members in one cell share frames."""

    __slots__ = ("_audience", "_cache", "_frames", "base", "items", "places", "public",
                 "room_id", "rule", "table", "timestamp")

    def __init__(
        self, room_id: str, items: list[Pending], timestamp: int, rule: ViewRule | None = None,
        places: InterestBatch | None = None, table: RoomTable | None = None,
    ) -> None:
        self.room_id = room_id
        self.places = places
        self.items = [item for item in items if item.kind is not None]
        #: the version the first item starts from (None: no items)
        self.base = self.items[0].base_version if self.items else None
        self.timestamp = timestamp
        self.rule: ViewRule = rule or _DEFAULT_VIEW
        self.table = table
        if table is not None:  # before any frame is encoded: the table's rule needs it
            table.learn_changes(self.items, self.rule)
        audience: frozenset[str] | None = None
        for item in self.items:
            if item.audience is not None:
                audience = union(audience, item.audience)
        self._audience = audience
        #: no private field in the tick: a member's view depends on where it stands alone
        self.public = audience is None
        self._frames: dict[tuple[Any, ...], tuple[list[dict[str, Any]], int, int, bool]] = {}
        self._cache: dict[tuple[Any, ...], tuple[list[bytes], int, int, bool]] = {}

    def start_for(self, synced_version: int) -> int | None:
        """The index of the member's next item (None: it has them all)."""
        if synced_version == self.base:  # the common case: the member is at the tick's start
            return 0
        for index, item in enumerate(self.items):
            if item.version > synced_version:
                if item.base_version != synced_version:
                    raise RuntimeError(
                        f"chain break in {self.room_id}: member at {synced_version}, "
                        f"next change {item.base_version}->{item.version}"
                    )
                return index
        return None

    def frames_from(
        self, start: int, codec: Codec, sent: int, player_id: str | None,
    ) -> tuple[list[bytes], int, int, bool]:
        """Encoded frames of a member at ``items[start].base_version`` whose last frame
        was ``sent``, its new (sent, synced) versions (``member_frames``), and whether
        it needs a FULL_STATE after them (``interest_frames``)."""
        audience = self._audience
        viewer = player_id if audience is not None and player_id in audience else None
        places = self.places
        if places is None:
            key: tuple[Any, ...] = (start, sent, viewer, codec)
        else:
            key = (start, sent, viewer, codec, places.trajectory(player_id, start))
        cached = self._cache.get(key)
        if cached is None:
            frames, sent_to, seen, resync = self._messages_from(key)
            table = self.table
            encode = table.encode if codec.tabled and table is not None else codec.encode
            cached = self._cache[key] = (
                [encode(f) for f in frames], sent_to, seen, resync)
        return cached

    def _messages_from(
        self, key: tuple[Any, ...],
    ) -> tuple[list[dict[str, Any]], int, int, bool]:
        start, sent, viewer = key[:3]
        view = (start, sent, viewer, *key[4:])
        cached = self._frames.get(view)
        if cached is None:
            if self.places is None:
                frames, sent_to, seen = member_frames(
                    self.room_id, self.items[start:], sent=sent,
                    seen=self.items[start].base_version, viewer=viewer, rule=self.rule,
                    timestamp=self.timestamp,
                )
                cached = (frames, sent_to, seen, False)
            else:
                cached = interest_frames(
                    self.room_id, self.items, start, self.places, sent=sent, viewer=viewer,
                    trajectory=key[4], rule=self.rule, timestamp=self.timestamp,
                )
            self._frames[view] = cached
        return cached


class Hub:
    """All rooms with members in this process."""

    def __init__(self, tick_seconds: float) -> None:
        self.tick = tick_seconds
        self.rooms: dict[str, RoomFanout] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._phases = 0.0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def room(
        self, room_id: str, state_source: StateSource, epoch_source: EpochSource | None = None,
        *, room_type: RoomType | None = None,
    ) -> RoomFanout:
        """The room's fan-out (created on first use); ``room_type`` decides its views."""
        fanout = self.rooms.get(room_id)
        if fanout is None:
            fanout = self.rooms[room_id] = RoomFanout(
                self, room_id, state_source, epoch_source, room_type=room_type)
        elif room_type is not None and room_type is not fanout.room_type:
            fanout.room_type = room_type
            if (fanout.index is None) != (room_type.interest is None) or (
                    fanout.index is not None and fanout.index.interest is not room_type.interest):
                fanout.reindex()
        return fanout

    def current_tick(self, phase: float = 0.0) -> int:
        """Index of the tick the loop's clock is in (a grid of ``tick`` seconds from ``phase``)."""
        if self.tick <= 0:  # no batching: every flush goes at once
            return time.monotonic_ns()
        return int((self.loop.time() - phase) / self.tick + 1e-6)

    def next_phase(self) -> float:
        """Spread rooms' tick grids over the tick (golden-ratio sequence), so that
        rooms do not all flush in the same loop iteration (a burst that delays reads)."""
        self._phases = (self._phases + 0.6180339887) % 1.0
        return self._phases * self.tick

    def get(self, room_id: str) -> RoomFanout | None:
        return self.rooms.get(room_id)

    def forget(self, fanout: RoomFanout) -> None:
        if self.rooms.get(fanout.room_id) is fanout:
            del self.rooms[fanout.room_id]

    def publish(self, room_id: str, change: Change) -> None:
        fanout = self.rooms.get(room_id)
        if fanout is not None:
            fanout.publish(change)

    def publish_event(self, room_id: str, event: OutEvent) -> None:
        fanout = self.rooms.get(room_id)
        if fanout is not None:
            fanout.publish_event(event)

    @staticmethod
    def write(member: Member, data: bytes) -> None:
        member.writer.write(data, member.codec.binary)
        METRICS.frames_out += 1
        METRICS.bytes_out += len(data)
