"""Recovery by version (PROTOCOL.md §14): room epochs and the bounded change log.

An epoch names one history of a room: within it a version never denotes two
states. The stores start a new epoch whenever they cannot promise that (a room
loaded from a snapshot that may not be its last state, Redis state re-seeded);
docs/protocol.md lists the rules. The change log keeps a room's recent changes
so a player who comes back at version V gets the changes after V instead of
the whole room. In memory mode it is a ``ChangeLog`` per loaded room (in the
store, not in the per-process fan-out, which is forgotten when a room has no
members); on Redis it is the room's stream.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from itertools import islice

from .changes import Change

#: where a snapshot's state JSON keeps the epoch (next to ``server``, the room code's data)
EPOCH_KEY = "epoch"


def new_epoch() -> str:
    """A fresh, opaque epoch name (64 random bits: never reused in practice)."""
    return "e-" + os.urandom(8).hex()


def chain_between(changes: Sequence[Change], since: int, version: int) -> list[Change] | None:
    """The changes taking a state at ``since`` to ``version``, gapless, or None.

    ``changes`` are in version order and may start before ``since`` or go past
    ``version`` (those are cut); None when they do not cover the whole span.
    """
    if since > version:
        return None
    chain: list[Change] = []
    at = since
    for change in changes:
        if change.version <= at:
            continue
        if change.base_version != at or change.version > version:
            break
        chain.append(change)
        at = change.version
    return chain if at == version else None


class ChangeLog:
    """The last ``size`` changes of one room, in version order."""

    __slots__ = ("_changes",)

    def __init__(self, size: int) -> None:
        self._changes: deque[Change] = deque(maxlen=max(size, 1))

    def append(self, change: Change) -> None:
        changes = self._changes
        if changes and changes[-1].version != change.base_version:
            changes.clear()  # a gap (never expected): what was kept no longer chains
        changes.append(change)

    def since(self, since: int, version: int) -> list[Change] | None:
        """The changes after ``since`` up to ``version``, or None if not all are kept."""
        if since == version:
            return []
        changes = self._changes
        if not changes or since > version or changes[0].base_version > since:
            return None
        # Each kept change is one version: index arithmetic finds the start at once.
        start = since - changes[0].base_version
        if 0 <= start < len(changes) and changes[start].base_version == since:
            tail = list(islice(changes, start, None))
        else:
            tail = list(changes)
        return chain_between(tail, since, version)

    def __len__(self) -> int:
        return len(self._changes)
