"""Runs one room's server-side code (§12): hooks, MESSAGE handlers, the tick, timers.

The store owns a ``RoomRunner`` for each room whose type has code, in the one
process that runs that room's code (memory: this process; Redis: the holder
of the room's runner lease). The runner implements the ``RoomContext`` room
code acts through, on top of a ``RoomHost`` the store provides: the host
reads the room, commits server changes through the store's ordinary path
(room-type rules, limits, versions, fan-out, persistence) and fans out events.

Room code is synchronous and trusted to be short, but never trusted to be
right: every call goes through ``_call``, which times it (metric per room type
and hook, a warning past ``SLOW_HOOK_SECONDS``), logs an exception with the
room and the hook and turns it into ERROR INTERNAL for the player who
triggered it, if any. A failing hook never stops the tick, the timers, the
room or a connection. After every call the code state (server-only data and
timers) is saved through the host when it changed, so a restart or another
process resumes it: timers are data with due times, not coroutines.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import orjson

from .core.envelope import KIND_PATTERN
from .core.errors import ErrorCode, ProtocolError
from .core.room_code import Timer
from .core.room_types import RoomType
from .metrics import METRICS

logger = logging.getLogger(__name__)

SLOW_HOOK_SECONDS = 0.01


class RoomHost(Protocol):
    """What a store offers the runner of one of its rooms."""

    def view(self) -> tuple[int, Mapping[str, Any], Mapping[str, Any]]:
        """(version, players, entities) as the runner must see them."""
        ...

    def apply_player(self, player_id: str, patch: dict[str, Any]) -> None: ...

    def apply_entity(self, entity_id: str, patch: dict[str, Any]) -> None: ...

    def emit_event(
        self, kind: str, data: Any, *, sender: str | None, to: frozenset[str] | None,
    ) -> None: ...

    def save_code_state(self, state: dict[str, Any]) -> None: ...


def json_copy(value: Any, what: str) -> Any:
    """A private plain-JSON copy (refuses what JSON cannot carry)."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from None


class RoomRunner:
    """The one place a room's code runs in this process."""

    def __init__(
        self, room_id: str, room_type: RoomType, host: RoomHost, *,
        code_state: dict[str, Any] | None = None, clock: Callable[[], float] = time.time,
    ) -> None:
        self.room_id = room_id
        self.room_type = room_type
        self.host = host
        self.clock = clock
        code_state = code_state or {}
        self.data: dict[str, Any] = dict(code_state.get("data") or {})
        self.pending: dict[str, Timer] = {}
        for raw in code_state.get("timers") or ():
            timer = Timer.from_json(raw)
            self.pending[timer.timer_id] = timer
        self.random = random.Random()
        self.context = RunnerContext(self)
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._tick_handle: asyncio.TimerHandle | None = None
        self._tick_at = 0.0
        self._last_tick = 0.0
        self._ids = itertools.count(1)
        self._saved = self._encoded_state()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.running = False

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Re-arm saved timers, call ``on_start``, start the tick."""
        self._loop = asyncio.get_running_loop()
        self.running = True
        for timer in list(self.pending.values()):
            self._arm(timer)
        self._call("on_start", self.room_type.on_start, self.context)
        rate = self.room_type.tick_rate
        if rate > 0:
            now = self._loop.time()
            self._tick_at = now + 1.0 / rate
            self._last_tick = now
            self._tick_handle = self._loop.call_at(self._tick_at, self._tick)

    def stop(self) -> None:
        """Stop running here (room closed, lease lost); timers stay as data."""
        self.running = False
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None

    # -- what the store tells the runner ---------------------------------------

    def joined(self, player_id: str) -> None:
        self._call("on_join", self.room_type.on_join, self.context, player_id)

    def left(self, player_id: str, reason: str) -> None:
        self._call("on_leave", self.room_type.on_leave, self.context, player_id, reason)

    def updated(self, player_id: str, patch: dict[str, Any]) -> None:
        self._call("on_update", self.room_type.on_update, self.context, player_id, patch)

    def message(self, player_id: str | None, kind: str, data: Any) -> None:
        """A MESSAGE whose kind the type handles; a refusal raises ProtocolError
        (INVALID_UPDATE from ``refuse``, INTERNAL for a crash) for the sender."""
        method = getattr(self.room_type, self.room_type.message_handlers[kind])
        self._call(f"message:{kind}", method, self.context, player_id, data, sender=player_id)

    # -- tick and timers ----------------------------------------------------------

    def _tick(self) -> None:
        self._tick_handle = None
        if not self.running:
            return
        loop = self._loop
        assert loop is not None
        now = loop.time()
        period = 1.0 / self.room_type.tick_rate
        METRICS.room_tick_lateness.observe(max(now - self._tick_at, 0.0))
        dt, self._last_tick = now - self._last_tick, now
        self._call("on_tick", self.room_type.on_tick, self.context, dt)
        # A fixed grid: the next tick is one period after the previous one's due time
        # (no drift); ticks missed by a stalled loop are skipped, not bunched.
        self._tick_at += period
        if self._tick_at <= loop.time():
            missed = int((loop.time() - self._tick_at) / period) + 1
            self._tick_at += missed * period
        if self.running:
            self._tick_handle = loop.call_at(self._tick_at, self._tick)

    def add_timer(self, seconds: float, name: str, data: Any) -> str:
        handler = getattr(self.room_type, name, None)
        if name.startswith("_") or not callable(handler):
            raise ValueError(f"{type(self.room_type).__name__} has no timer handler {name!r}")
        timer = Timer(
            f"t{int(self.clock() * 1000):x}-{next(self._ids)}", name,
            int((self.clock() + max(seconds, 0.0)) * 1000), json_copy(data, "timer data"),
        )
        self.pending[timer.timer_id] = timer
        if self.running:
            self._arm(timer)
        return timer.timer_id

    def cancel_timer(self, timer_id: str) -> bool:
        handle = self._handles.pop(timer_id, None)
        if handle is not None:
            handle.cancel()
        return self.pending.pop(timer_id, None) is not None

    def _arm(self, timer: Timer) -> None:
        assert self._loop is not None
        delay = max(timer.due_ms / 1000 - self.clock(), 0.0)
        self._handles[timer.timer_id] = self._loop.call_later(delay, self._fire, timer.timer_id)

    def _fire(self, timer_id: str) -> None:
        self._handles.pop(timer_id, None)
        timer = self.pending.pop(timer_id, None)
        if timer is None or not self.running:
            return
        method = getattr(self.room_type, timer.name)
        self._call(f"timer:{timer.name}", method, self.context, timer.data)

    # -- calling room code ----------------------------------------------------------

    def _call(self, hook: str, method: Callable[..., Any], *args: Any,
              sender: str | None = None) -> None:
        started = time.perf_counter()
        try:
            method(*args)
        except ProtocolError as exc:
            if sender is None:
                logger.warning("room %s: %s refused: %s", self.room_id, hook, exc.message)
            else:
                raise
        except Exception:
            logger.exception("room %s (%s): room code failed in %s",
                             self.room_id, self.room_type.name, hook)
            METRICS.room_code_errors[self.room_type.name] += 1
            if sender is not None:
                raise ProtocolError(
                    ErrorCode.INTERNAL, "the room's code failed handling this message"
                ) from None
        finally:
            elapsed = time.perf_counter() - started
            METRICS.room_code_seconds.labels(self.room_type.name, hook.split(":")[0]).observe(
                elapsed)
            if elapsed > SLOW_HOOK_SECONDS:
                logger.warning("room %s (%s): %s took %.1f ms (room code must not block)",
                               self.room_id, self.room_type.name, hook, elapsed * 1000)
            self._save_if_changed()

    def code_state(self) -> dict[str, Any]:
        return {"data": self.data, "timers": [t.as_json() for t in self.pending.values()]}

    def _encoded_state(self) -> bytes:
        try:
            return orjson.dumps(self.code_state())
        except TypeError:
            return b""

    def _save_if_changed(self) -> None:
        encoded = self._encoded_state()
        if not encoded:
            logger.error("room %s: room.server holds a value that is not JSON; not saved",
                         self.room_id)
            return
        if encoded != self._saved:
            self._saved = encoded
            self.host.save_code_state(orjson.loads(encoded))


class RunnerContext:
    """``RoomContext`` for the runner's room (see ``sync.core.room_code``)."""

    __slots__ = ("_runner",)

    def __init__(self, runner: RoomRunner) -> None:
        self._runner = runner

    @property
    def room_id(self) -> str:
        return self._runner.room_id

    @property
    def version(self) -> int:
        return self._runner.host.view()[0]

    @property
    def players(self) -> Mapping[str, Mapping[str, Any]]:
        return self._runner.host.view()[1]

    @property
    def entities(self) -> Mapping[str, Mapping[str, Any]]:
        return self._runner.host.view()[2]

    @property
    def server(self) -> dict[str, Any]:
        return self._runner.data

    @property
    def now(self) -> float:
        return self._runner.clock()

    @property
    def random(self) -> random.Random:
        return self._runner.random

    def update_player(self, player_id: str, patch: dict[str, Any]) -> None:
        self._runner.host.apply_player(player_id, json_copy(patch, "patch"))

    def update_entity(self, entity_id: str, patch: dict[str, Any]) -> None:
        self._runner.host.apply_entity(entity_id, json_copy(patch, "patch"))

    def delete_entity(self, entity_id: str) -> None:
        current = self.entities.get(entity_id)
        if current:
            self._runner.host.apply_entity(entity_id, dict.fromkeys(current))

    def send_event(
        self, kind: str, data: Any = None, *, to: str | Iterable[str] | None = None,
    ) -> None:
        if type(kind) is not str or not KIND_PATTERN.fullmatch(kind):
            raise ValueError(f"event kind must match {KIND_PATTERN.pattern}, got {kind!r}")
        targets = None if to is None else frozenset([to] if isinstance(to, str) else to)
        self._runner.host.emit_event(
            kind, json_copy(data, "event data"), sender=None, to=targets)

    def call_later(self, seconds: float, name: str, data: Any = None) -> str:
        return self._runner.add_timer(seconds, name, data)

    def cancel(self, timer_id: str) -> bool:
        return self._runner.cancel_timer(timer_id)

    def timers(self) -> list[Timer]:
        return list(self._runner.pending.values())


def message_route(room_type: RoomType, kind: str) -> str:
    """Where a MESSAGE of ``kind`` goes: ``handle`` (the room's code), ``relay`` (an
    EVENT to the other members) — or it is refused with UNKNOWN_MESSAGE."""
    if kind in room_type.message_handlers:
        return "handle"
    if room_type.relay_messages:
        return "relay"
    raise ProtocolError(
        ErrorCode.UNKNOWN_MESSAGE, f"this room does not handle messages of kind {kind!r}")
