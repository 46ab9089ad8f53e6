"""The Lua scripts of the cluster store, loaded once and called by name.

Each script is one atomic step on the state of record (see ``lua/``). Room
scripts share a prelude and take the room's keys (``redis_keys.room_keys``)
plus ``prefix, maxlen, roomId`` first; replies are lists whose first item is
a status (``ok``, ``miss``, ``closed``...). Nothing here decides room rules.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from . import redis_keys as keys

_LUA = Path(__file__).with_name("lua")
_PRELUDE = (_LUA / "_prelude.lua").read_text()
ROOM_SCRIPTS = ("commit", "join", "leave", "disconnect", "resume", "seed", "load", "reset",
                "close")
PLAIN_SCRIPTS = ("reap", "lease")

#: entries kept per room log (approximate trim); a reader further behind reloads the room
LOG_MAXLEN = 1000
#: most script calls sent in one pipeline
MAX_BATCH = 256


def text(value: Any) -> Any:
    """bytes → str, recursively through the lists a script returns."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [text(v) for v in value]
    return value


class Scripts:
    """Room scripts called in the same loop iteration share one pipelined round trip.

    Hundreds of sockets writing at once would otherwise each check out a pooled
    connection and pay a round trip; batching them costs no latency (the flush is
    ``call_soon``) and keeps one process's Redis traffic to a few large writes.
    """

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._pending: list[tuple[Any, list[str], list[Any], asyncio.Future[Any]]] = []
        self._flushing = False
        self._room = {
            name: client.register_script(_PRELUDE + (_LUA / f"{name}.lua").read_text())
            for name in ROOM_SCRIPTS
        }
        self._plain = {
            name: client.register_script((_LUA / f"{name}.lua").read_text())
            for name in PLAIN_SCRIPTS
        }

    async def room(self, name: str, room_id: str, *args: Any) -> list[Any]:
        """Run a room script; the reply with its status decoded."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((
            self._room[name], keys.room_keys(room_id),
            [keys.PREFIX, LOG_MAXLEN, room_id, *args], future,
        ))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        reply = await future
        if isinstance(reply, list) and reply and isinstance(reply[0], bytes):
            reply[0] = reply[0].decode()
        return reply

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for script, script_keys, args, _ in batch:
                            await script(keys=script_keys, args=args, client=pipe)
                        replies = await pipe.execute(raise_on_error=False)
                except BaseException as exc:
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(
                                exc if isinstance(exc, Exception) else ConnectionError(exc))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (*_, future), reply in zip(batch, replies, strict=True):
                    if future.done():
                        continue
                    if isinstance(reply, Exception):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        finally:
            self._flushing = False

    async def reap(self, proc: str, grace_ms: int) -> int:
        return await self._plain["reap"](
            keys=[keys.PROCS, keys.heartbeat_key(proc), keys.proc_players_key(proc), keys.GRACE],
            args=[keys.PREFIX, proc, grace_ms],
        )

    async def lease(self, room_ids: list[str], me: str, px: int) -> list[int]:
        if not room_ids:
            return []
        return await self._plain["lease"](
            keys=[keys.lease_key(r) for r in room_ids], args=[me, px]
        )
