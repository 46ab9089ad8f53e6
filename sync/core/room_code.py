"""What server-side room code (§12) sees: the context its hooks are handed.

A room type's hooks (``on_start``, ``on_join``, ``on_leave``, ``on_update``,
``on_tick``, message handlers, timer handlers) are plain synchronous methods
that receive a :class:`RoomContext`. Everything they do to the room goes
through it: reads of the state, server changes (ordinary versioned changes),
events, timers, and the room's server-only data. The runtime that implements
it (``sync.room_runner``) decides where changes are committed (memory or
Redis) and that a room's code runs in one process at a time; the code itself
never awaits, never touches a socket, a database or a clock of its own.

Timers are data (a handler's name, its arguments and a due time in epoch
milliseconds), kept with the server-only data, so they survive a restart and
move with the room to another process.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .errors import ErrorCode, ProtocolError

F = TypeVar("F", bound=Callable[..., Any])

#: attribute a ``@handles`` method carries: the MESSAGE kinds it handles
HANDLES_ATTR = "_kasagi_handles"


def handles(*kinds: str) -> Callable[[F], F]:
    """Method decorator: this method handles MESSAGEs of these kinds.

    The method is called as ``method(room, player_id, data)``; raising
    :func:`refuse` answers the sender with ERROR ``INVALID_UPDATE``.
    """

    def mark(method: F) -> F:
        setattr(method, HANDLES_ATTR, (*getattr(method, HANDLES_ATTR, ()), *kinds))
        return method

    return mark


def refuse(message: str) -> ProtocolError:
    """What room code raises to refuse a message or a join: ``raise refuse("...")``."""
    return ProtocolError(ErrorCode.INVALID_UPDATE, message)


def forbid(message: str) -> ProtocolError:
    """What ``check_join`` raises to refuse a join: ERROR ``FORBIDDEN``."""
    return ProtocolError(ErrorCode.FORBIDDEN, message)


@dataclass(frozen=True, slots=True)
class Timer:
    """A pending ``call_later``: handler ``name(room, data)`` at ``due_ms`` (epoch ms)."""

    timer_id: str
    name: str
    due_ms: int
    data: Any = None

    def as_json(self) -> list[Any]:
        return [self.timer_id, self.name, self.due_ms, self.data]

    @classmethod
    def from_json(cls, value: list[Any]) -> Timer:
        timer_id, name, due_ms, data = value
        return cls(str(timer_id), str(name), int(due_ms), data)


class RoomContext(Protocol):
    """The one object room code acts through (Colyseus's ``this``, Nakama's dispatcher)."""

    @property
    def room_id(self) -> str: ...

    @property
    def version(self) -> int:
        """The room version as this code sees it (its own changes included)."""
        ...

    @property
    def players(self) -> Mapping[str, Mapping[str, Any]]:
        """playerId → the player's object (private fields included). Read-only."""
        ...

    @property
    def entities(self) -> Mapping[str, Mapping[str, Any]]: ...

    @property
    def server(self) -> dict[str, Any]:
        """Server-only data: never sent to a client, saved with the room, moved with
        it on a fail-over. Plain JSON values; mutate it in place."""
        ...

    @property
    def now(self) -> float:
        """Seconds since the epoch, as the runtime's clock says."""
        ...

    @property
    def random(self) -> random.Random: ...

    def update_player(self, player_id: str, patch: dict[str, Any]) -> None:
        """Merge-patch a player's object with server authority (server-owned fields too)."""
        ...

    def update_entity(self, entity_id: str, patch: dict[str, Any]) -> None:
        """Merge-patch a shared entity (created if absent, deleted when emptied)."""
        ...

    def delete_entity(self, entity_id: str) -> None: ...

    def send_event(
        self, kind: str, data: Any = None, *, to: str | Iterable[str] | None = None,
    ) -> None:
        """EVENT ``kind`` (``from`` null) to every member, or only to the player(s) ``to``.
        It reaches each member after every change made before it."""
        ...

    def call_later(self, seconds: float, name: str, data: Any = None) -> str:
        """Run the room type's method ``name(room, data)`` in ``seconds``; the timer's id."""
        ...

    def cancel(self, timer_id: str) -> bool:
        """Cancel a timer; False if it already ran or never existed."""
        ...

    def timers(self) -> list[Timer]: ...
