"""Server-side changes to live rooms, for Django code: views, signals, commands, tasks.

Every change goes through the room store exactly like a client's message:
the room type's checks and the size limits, a new version, one fan-out to
the members (DELTA_UPDATE, PLAYER_LEFT...) and the persistence hooks. The
server has authority: a player patch may write server-owned fields
(``score`` in an arena, for instance), and no player is the author: the room's
history (§15) records source ``api``, or the ``by`` a caller passes (the admin
passes its user with source ``admin``).

Each operation has an async form (``aupdate_entity``) and a sync form
(``update_entity``), as Django does. The sync form runs the async one on the
event loop the engine lives on: from a sync view of the server (or a signal
it fires) through asgiref's ``async_to_sync``, which runs it on the server's
loop; from another thread of the server, on that same loop; in a process
with no server (a management command, a worker), on one loop of this
module's own that lasts as long as the process, so the engine and its store
connections are built once and outlive a call. Called from async code, the
sync form refuses (await the async form there).

Which rooms it reaches is the store's business, and this module only calls
``get_runtime().store``: with the in-memory store (no ``REDIS_URL``) that is
the rooms of the process it runs in; with the Redis store, every process's.

A refusal raises :class:`ProtocolError` with the contract's code
(``ROOM_NOT_FOUND``, ``ROOM_CLOSED``, ``NOT_IN_ROOM``, ``INVALID_UPDATE``,
``PAYLOAD_TOO_LARGE``, ``BAD_MESSAGE``...) and changes nothing.

This module never touches the ORM itself; rooms that are not loaded are
loaded by the store from its directory.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import orjson
from asgiref.sync import async_to_sync

from . import compat, runtime
from .core.changes import API, Author
from .core.envelope import ID_PATTERN, KIND_PATTERN, check_document
from .core.errors import ErrorCode, ProtocolError
from .documents import documents_of
from .runtime import get_runtime

__all__ = [
    "Author",
    "ErrorCode",
    "ProtocolError",
    "RoomState",
    "aclose_room",
    "akick_player",
    "areconfigure_room",
    "areset_room",
    "arestore_room",
    "aroom_state",
    "aroom_states",
    "asend_event",
    "aupdate_entity",
    "aupdate_player",
    "close_room",
    "kick_player",
    "reconfigure_room",
    "reset_room",
    "restore_room",
    "room_state",
    "room_states",
    "send_event",
    "update_entity",
    "update_player",
]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class RoomState:
    """A live room as the store holds it now."""

    room_id: str
    version: int
    #: ``{"players": {...}, "entities": {...}}``; never mutate it.
    state: dict[str, Any]
    #: playerId → whether its socket is connected (False: in its grace period).
    connected: dict[str, bool]

    @property
    def player_count(self) -> int:
        return len(self.state.get("players") or {})


# -- async forms ----------------------------------------------------------


async def aupdate_entity(
    room_id: str, entity_id: str, patch: dict[str, Any], *, by: Author | None = None,
) -> int:
    """Merge-patch ``entities[entity_id]`` (created if absent, deleted when emptied).

    Returns the room version after the change (unchanged for a no-op patch).
    """
    _check_id(room_id, "room_id")
    _check_id(entity_id, "entity_id")
    patch = _document(patch, "patch")
    return await get_runtime().store.server_update_entity(
        room_id, entity_id, patch, by=by or API)


async def aupdate_player(
    room_id: str, player_id: str, patch: dict[str, Any], *, by: Author | None = None,
) -> int:
    """Merge-patch a player's object with server authority (server-owned fields included).

    Returns the room version after the change (unchanged for a no-op patch).
    """
    _check_id(room_id, "room_id")
    _check_id(player_id, "player_id")
    patch = _document(patch, "patch")
    return await get_runtime().store.server_update_player(
        room_id, player_id, patch, by=by or API)


async def areset_room(
    room_id: str, state: dict[str, Any] | None = None, *, by: Author | None = None,
) -> int:
    """Reset a room: entities replaced by ``state["entities"]`` (default none),
    every player back to the object it joined with. Returns the new version."""
    _check_id(room_id, "room_id")
    if state is not None:
        state = _document(state, "state")
        entities = state.get("entities", {})
        if type(entities) is not dict or any(type(e) is not dict for e in entities.values()):
            raise _bad('state["entities"] must be an object of objects')
        state = {"entities": entities}
    return await get_runtime().store.reset(room_id, state, by=by or API)


async def arestore_room(room_id: str, state: dict[str, Any], *, by: Author | None = None) -> int:
    """Set a room back to ``state`` (§15, the room at an earlier version, e.g. from
    ``rooms.selectors.room_state_at``): its entities, and the objects of the players
    in both, as one change; nobody is added or removed. Returns the new version
    (unchanged when nothing differs)."""
    _check_id(room_id, "room_id")
    state = _document(state, "state")
    for table in ("players", "entities"):
        objects = state.get(table, {})
        if type(objects) is not dict or any(type(o) is not dict for o in objects.values()):
            raise _bad(f'state["{table}"] must be an object of objects')
    return await get_runtime().store.restore(room_id, state, by=by or API)


async def aclose_room(room_id: str, *, by: Author | None = None) -> None:
    """Close a room for good: every player gets PLAYER_LEFT ``closed``, then every
    member ERROR ``ROOM_CLOSED``; later joins are refused with ROOM_CLOSED."""
    _check_id(room_id, "room_id")
    await get_runtime().store.close(room_id, by=by or API)


async def akick_player(room_id: str, player_id: str, *, by: Author | None = None) -> None:
    """Remove a player at once: the members get PLAYER_LEFT ``kicked``."""
    _check_id(room_id, "room_id")
    _check_id(player_id, "player_id")
    await get_runtime().store.kick(room_id, player_id, by=by or API)


async def areconfigure_room(room_id: str) -> None:
    """Apply a room's changed configuration (visibility, members, player limit) to
    the live room at once, in every process; the ``rooms`` app calls it when a
    ``Room`` is saved. Players already in the room stay."""
    _check_id(room_id, "room_id")
    await get_runtime().store.reconfigure(room_id)


async def asend_event(
    room_id: str, kind: str, data: Any = None, to: str | Iterable[str] | None = None,
) -> None:
    """Send EVENT ``kind`` with ``data`` (``from`` null) to every member of a room, or
    only to the player id(s) ``to``, on every process. Not state: no version, not
    persisted, nobody in a grace period gets it later. It reaches each member after
    every change the room applied before it."""
    _check_id(room_id, "room_id")
    if type(kind) is not str or not KIND_PATTERN.fullmatch(kind):
        raise _bad(f"kind must match [A-Za-z0-9_.:-]{{1,64}}, got {kind!r}")
    wrapped = _document({"data": data}, "data")
    targets = None
    if to is not None:
        targets = frozenset([to] if isinstance(to, str) else to)
        for player_id in targets:
            _check_id(player_id, "to")
    await get_runtime().store.send_event(room_id, kind, wrapped["data"], targets)


async def aclear_document(room_id: str, doc_id: str) -> bool:
    """(§16) Forget a room's document: its live copy where the room is loaded (every
    process, with Redis) and its stored state; True if a live copy was cleared here.
    Connected members keep their own copies: a member's next DOC_SYNC may send the
    content back (clear a document nobody is editing)."""
    _check_id(room_id, "room_id")
    _check_id(doc_id, "doc_id")
    return await documents_of(get_runtime().store).clear_document(room_id, doc_id)


async def aroom_state(room_id: str) -> RoomState | None:
    """The live state of a room, or None when the store does not hold it loaded."""
    _check_id(room_id, "room_id")
    return (await aroom_states([room_id])).get(room_id)


async def aroom_states(room_ids: Iterable[str]) -> dict[str, RoomState]:
    """Live states of several rooms in one call (those not loaded are left out)."""
    store = get_runtime().store
    found: dict[str, RoomState] = {}
    for room_id in room_ids:
        snapshot = await store.snapshot(room_id)
        if snapshot is None:
            continue
        version, state = snapshot
        connected = store.connected_players(room_id)
        found[room_id] = RoomState(room_id, version, state, dict(connected))
    return found


# -- sync forms -----------------------------------------------------------


def _sync(afunc: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """The blocking twin of ``afunc``: it runs ``afunc`` on the engine's event loop."""
    in_worker = async_to_sync(afunc)

    @wraps(afunc)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                f"sync.api.{call.__name__}() was called from async code; "
                f"use `await sync.api.{afunc.__name__}(...)` there"
            )
        if _in_server_worker():
            # A sync view (or sync_to_async code) of the server: asgiref runs the call on
            # the server's loop and lets it call back into this thread if it must.
            return in_worker(*args, **kwargs)
        loop = _engine_loop()
        return asyncio.run_coroutine_threadsafe(afunc(*args, **kwargs), loop).result()

    call.__name__ = call.__qualname__ = afunc.__name__[1:]
    call.__doc__ = f"Blocking form of :func:`{afunc.__name__}`. {afunc.__doc__ or ''}"
    return call


def _in_server_worker() -> bool:
    """Whether this thread runs sync code for an event loop of this process (asgiref's
    SyncToAsync: Django's sync views under daphne, ``sync_to_async`` functions)."""
    return compat.in_sync_to_async_thread()


_private_loop: asyncio.AbstractEventLoop | None = None
_private_lock = threading.Lock()


def _engine_loop() -> asyncio.AbstractEventLoop:
    """The loop the engine lives on: the server's, or (in a process with no server:
    a management command, a worker) one of this module's own that lives as long as the
    process, so that the engine and its store connections outlive a single call."""
    engine = runtime.current()  # the engine if one was built; never build it here
    loop = engine.loop if engine is not None else None
    if loop is not None and loop.is_running():
        return loop
    global _private_loop
    with _private_lock:
        if _private_loop is None:
            _private_loop = asyncio.new_event_loop()
            threading.Thread(
                target=_private_loop.run_forever, name="kasagi-api-loop", daemon=True
            ).start()
        return _private_loop


update_entity = _sync(aupdate_entity)
update_player = _sync(aupdate_player)
reset_room = _sync(areset_room)
restore_room = _sync(arestore_room)
close_room = _sync(aclose_room)
kick_player = _sync(akick_player)
reconfigure_room = _sync(areconfigure_room)
room_state = _sync(aroom_state)
room_states = _sync(aroom_states)
send_event = _sync(asend_event)
clear_document = _sync(aclear_document)


# -- checks ---------------------------------------------------------------


def _check_id(value: Any, what: str) -> None:
    if type(value) is not str or not ID_PATTERN.fullmatch(value):
        raise _bad(f"{what} must match [A-Za-z0-9_.-]{{1,64}}, got {value!r}")


def _document(value: Any, what: str) -> dict[str, Any]:
    """A JSON object within the nesting and key limits, as a private plain-JSON copy.

    The round trip refuses what JSON cannot carry (sets, Decimals, non-string
    keys) before it can reach a fan-out, and leaves the caller free to reuse
    its dict afterwards (the room never shares a caller's objects).
    """
    if not isinstance(value, dict):
        raise _bad(f"{what} must be a dict (a JSON object), got {type(value).__name__}")
    try:
        copy = orjson.loads(orjson.dumps(value))
    except TypeError as exc:
        raise _bad(f"{what} is not JSON: {exc}") from None
    check_document(copy, get_runtime().limits, what)
    return copy


def _bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_MESSAGE, message)
