"""Choosing how a client's frames reach its consumer.

Under daphne (known-good versions, see ``sync.compat``) the consumer gets
each frame in the protocol's data callback (``sync.compat.DaphneFrameReader``)
and handles the hot messages there and then: no ``asyncio.Queue`` hop and no
task wake-up per message, and autobahn's Python frame parser only for the
frames that need it. Elsewhere frames arrive the ASGI way, through
``receive()`` in the consumer's task. Which path each connection took is
counted in ``kasagi_reader_connections_total{path=...}`` ("daphne": the
socket's reads too, "daphne_reactor": Twisted's reads, our parser), and how its
messages were run in ``kasagi_messages_inline_total`` against
``kasagi_messages_queued_total``.

This module touches no library internals; ``sync.compat`` does.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from .compat import DaphneFrameReader, FrameHandler, reader_for_daphne
from .metrics import METRICS

AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]


def reader_for(send: AsgiSend, handle: FrameHandler) -> DaphneFrameReader | None:
    """The fast reader for the server behind ``send``, or None (frames come through
    ``receive()``), counted by path. Call it after ``websocket.accept``."""
    reader = reader_for_daphne(send, handle)
    if reader is None:
        METRICS.reader_connections["generic"] += 1
    else:
        METRICS.reader_connections["daphne" if reader.direct else "daphne_reactor"] += 1
    return reader


@types.coroutine
def resume(coro: Coroutine[Any, Any, None], awaiting: Any) -> Generator[Any, Any, None]:
    """Finish, in a task, a coroutine whose first step ran in a data callback and
    stopped at ``awaiting`` (what it yielded: a future, or None for a bare yield).

    It hands ``awaiting`` up to the task as if the coroutine were awaited there
    from the start, then passes every resumption (and any exception thrown in,
    such as a cancellation) through to it.
    """
    value = awaiting
    while True:
        try:
            sent = yield value
        except BaseException as exc:  # thrown into the task: the coroutine's to handle
            try:
                value = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                value = coro.send(sent)
            except StopIteration:
                return
