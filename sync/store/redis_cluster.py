"""The Redis store on Redis Cluster: the same keys and scripts, routed by hash slot.

``REDIS_URL`` may name any node of a cluster: ``is_cluster`` asks it (``INFO
cluster``) when the store is built, and on a cluster the store uses redis-py's
``RedisCluster`` for its ordinary commands, ``ClusterScripts`` for the batched
room scripts and ``ClusterLogReader`` for the rooms' logs. A plain Redis keeps
the single-connection path of ``redis_scripts`` and ``redis_reader`` untouched.

- **Scripts** go to the primary owning the room's slot: one ``Scripts`` batcher
  (one raw connection, one write per round trip) per primary, chosen from
  redis-py's slot map. ``MOVED`` (a slot moved, a fail-over) refreshes the map and
  the call is retried on the new owner; ``ASK`` (a slot being migrated) sends
  ``ASKING`` and the call to the target; ``TRYAGAIN``/``CLUSTERDOWN`` are retried
  for a moment. None of these ran the script, so a retry is safe. A connection
  failure is not retried (the script may have run): the caller answers INTERNAL,
  as on a single Redis, and the slot map is refreshed in the background.
- **Index updates next to a script** (``before``/``after``) are on another slot
  (the process's players set, ``graces``), so usually on another primary: a
  ``before`` command is sent and answered before the script, an ``after`` command
  is sent once the script answered (same order as on one Redis; the one thing
  lost is the single write: a process that dies between the script's reply and
  its ``after`` command leaves a grace the janitor only finds once the room gets
  another grace, see docs/scaling.md).
- **The log reader** cannot read several rooms in one ``XREAD``: a cluster
  refuses a multi-key command across slots (``CROSSSLOT``), even on one node. It
  follows each loaded room with a blocking ``XREAD`` of its own (one raw
  connection per room, to the room's primary), so rooms on other shards never
  wait for a failed one. A room whose primary became unreachable is *lost*: once
  its slot answers again (the replica was promoted) the room is recovered like
  after a Redis outage (players reclaimed, mirror reloaded, FULL_STATE) and gets a
  new epoch (§14), since the promoted replica may miss the last writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from . import redis_keys as keys
from .redis_reader import READ_BLOCK_MS, LogReader
from .redis_scripts import (
    _REPLIES,
    PlainScript,
    RawConnection,
    RoomScript,
    Script,
    Scripts,
    _log_failure,
    pack_command,
)

if TYPE_CHECKING:
    from .redis import RedisRoomStore

logger = logging.getLogger(__name__)

#: redirections (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) a call follows before it fails
MAX_REDIRECTS = 8
#: seconds a refused call (TRYAGAIN, CLUSTERDOWN) waits before it is retried
REDIRECT_PAUSE = 0.1
#: least seconds between two background refreshes of the slot map
REFRESH_EVERY = 0.25
_TRANSIENT = (TryAgainError, ClusterDownError)


def is_cluster(url: str) -> bool:
    """Whether ``url`` names a node of a Redis Cluster (``INFO cluster``). A Redis that
    does not answer counts as a plain one (a warning is logged)."""
    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        info: Any = client.info("cluster")
        return bool(info.get("cluster_enabled"))
    except redis.RedisError as exc:
        logger.warning("redis at %s did not answer INFO cluster (%s); using it as one Redis",
                       url, exc)
        return False
    finally:
        client.close()


def cluster_client(url: str, *, timeout: float) -> RedisCluster:
    """redis-py's cluster client for the store's ordinary commands (it follows MOVED/ASK
    itself and re-reads the slot map after a connection error)."""
    return RedisCluster.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=1.0, socket_keepalive=True,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3), max_connections=64,
    )


def slot_of_room(room_id: str) -> int:
    return key_slot(keys.meta_key(room_id).encode())


def _key_of(command: Sequence[Any]) -> bytes:
    key = command[1]
    return key.encode() if isinstance(key, str) else key


class SlotMap:
    """The cluster's slot → primary map (redis-py's), a client per primary, and a
    single-flight refresh."""

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        self.clients: dict[str, Redis] = {}
        self._refresh: asyncio.Task[None] | None = None
        self._refreshed = 0.0
        #: bumped on every refresh (readers re-route when it moves)
        self.generation = 0

    async def ready(self) -> None:
        if not self.cluster.nodes_manager.slots_cache:
            await self.cluster.initialize()

    def primary(self, slot: int) -> tuple[str, Redis]:
        """The name and a client of the primary owning ``slot`` (from the map as known)."""
        node = self.cluster.nodes_manager.get_node_from_slot(slot)
        client = self.clients.get(node.name)
        if client is None:
            kwargs = dict(node.connection_kwargs)
            kwargs.pop("event_dispatcher", None)
            client = self.clients[node.name] = Redis(connection_pool=ConnectionPool(
                connection_class=node.connection_class, max_connections=8, **kwargs))
        return node.name, client

    def moved(self, exc: AskError) -> None:
        """Note one slot's new owner at once (a MOVED), then re-read the whole map."""
        if isinstance(exc, MovedError):
            with contextlib.suppress(Exception):
                self.cluster.nodes_manager.move_slot(exc)
        self.generation += 1
        self.refresh_soon()

    def refresh_soon(self) -> None:
        """Re-read the slot map in the background (at most every ``REFRESH_EVERY`` s)."""
        if self._refresh is not None and not self._refresh.done():
            return
        self._refresh = asyncio.get_running_loop().create_task(self.refresh())

    async def refresh(self) -> None:
        wait = self._refreshed + REFRESH_EVERY - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._refreshed = time.monotonic()
        try:
            await self.cluster.nodes_manager.initialize()
        except (RedisError, RedisClusterException, OSError) as exc:  # mid fail-over
            logger.debug("redis cluster: slot map refresh failed: %s", exc)
        self.generation += 1

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self.clients.clear()


class ClusterScripts(Scripts):
    """``Scripts`` on a cluster: the same calls, each sent to its slot's primary on
    that primary's batcher (see the module docstring)."""

    def __init__(self, cluster: RedisCluster, *, timeout: float) -> None:
        super().__init__(cluster, timeout=timeout)  # type: ignore[arg-type]
        self.slots = SlotMap(cluster)
        self._nodes: dict[str, Scripts] = {}
        self._slots: dict[str, int] = {}

    def _batcher(self, slot: int) -> Scripts:
        name, client = self.slots.primary(slot)
        batcher = self._nodes.get(name)
        if batcher is None:
            batcher = self._nodes[name] = Scripts(client, timeout=self._timeout)
        return batcher

    async def room(
        self, name: RoomScript, room_id: str, *args: Any, extra_keys: Sequence[str] = (),
        before: Sequence[Sequence[Any]] = (), after: Sequence[Sequence[Any]] = (),
    ) -> Any:
        script = self._room[name]
        keys_ = self._keys.get(room_id)
        if keys_ is None:
            if len(self._keys) > 10_000:
                self._keys.clear()
                self._slots.clear()
            keys_ = self._keys[room_id] = keys.room_keys(room_id)
        slot = self._slots.get(room_id)
        if slot is None:
            slot = self._slots[room_id] = slot_of_room(room_id)
        packed = pack_command((
            "EVALSHA", script.sha, len(keys_) + len(extra_keys), *keys_, *extra_keys,
            self.log_maxlen, *args))
        for command in before:  # answered before the script runs (another slot)
            await self.command(*command)
        reply = await self._routed(slot, script, packed)
        for command in after:
            self.send(*command)
        if isinstance(reply, list) and reply and isinstance(reply[0], bytes):
            reply[0] = _REPLIES[reply[0]]
        return reply

    async def plain(self, name: PlainScript, keys_: Sequence[str], args: Sequence[Any]) -> Any:
        script = self._plain[name]
        packed = pack_command(("EVALSHA", script.sha, len(keys_), *keys_, *args))
        return await self._routed(key_slot(keys_[0].encode()), script, packed)

    def send(self, *command: Any) -> None:
        task = asyncio.get_running_loop().create_task(self.command(*command))
        task.add_done_callback(_log_failure)

    async def command(self, *command: Any) -> Any:
        return await self._routed(key_slot(_key_of(command)), None, pack_command(command))

    # Callers that pack their own script calls (``Scripts._run``/``_call``, e.g. the
    # documents' scripts) are routed by the first key of the packed command.

    async def _run(
        self, script: Script, packed: bytes, before: Sequence[Sequence[Any]],
        after: Sequence[Sequence[Any]],
    ) -> Any:
        for command in before:
            await self.command(*command)
        reply = await self._routed(_slot_of_packed(packed), script, packed)
        for command in after:
            self.send(*command)
        return reply

    def _call(self, packed: bytes) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_task(
            self._routed(_slot_of_packed(packed), None, packed))

    async def _routed(self, slot: int, script: Script | None, packed: bytes) -> Any:
        """Run one packed call on the primary of ``slot``, following redirections."""
        await self.slots.ready()
        asking: Scripts | None = None
        for attempt in range(MAX_REDIRECTS):
            batcher = asking or self._batcher(slot)
            if asking is not None:
                asking.send("ASKING")
                asking = None
            try:
                if script is None:
                    return await batcher._call(packed)
                return await batcher._run(script, packed, (), ())
            except MovedError as exc:
                self.slots.moved(exc)
                await self.slots.refresh()
            except AskError as exc:
                asking = self._ask_target(exc)
            except _TRANSIENT:
                await asyncio.sleep(REDIRECT_PAUSE * (attempt + 1))
                self.slots.refresh_soon()
            except ResponseError:
                raise
            except (RedisError, RedisClusterException, OSError):
                self.slots.refresh_soon()  # the primary may be gone: find its successor
                raise
        raise ClusterDownError(f"slot {slot}: too many redirections")

    def _ask_target(self, exc: AskError) -> Scripts:
        name = f"{exc.host}:{exc.port}"
        batcher = self._nodes.get(name)
        if batcher is None:
            client = Redis(host=str(exc.host), port=int(exc.port), socket_timeout=self._timeout,
                           socket_connect_timeout=1.0)
            self.slots.clients.setdefault(name, client)
            batcher = self._nodes[name] = Scripts(self.slots.clients[name],
                                                  timeout=self._timeout)
        return batcher

    async def close(self) -> None:
        for batcher in self._nodes.values():
            await batcher.close()
        self._nodes.clear()
        await self.slots.close()


class ClusterLogReader(LogReader):
    """The log reader on a cluster: one blocking ``XREAD`` per loaded room on the room's
    primary (a cluster refuses one ``XREAD`` across slots), started and stopped as
    rooms load and unload; see the module docstring."""

    def __init__(self, store: RedisRoomStore, scripts: ClusterScripts) -> None:
        super().__init__(store)
        self.slots = scripts.slots
        self._followers: dict[str, asyncio.Task[None]] = {}
        #: rooms whose primary was unreachable: recovered (new epoch) once it answers
        self.lost: set[str] = set()
        self._failing: set[str] = set()
        #: rooms whose follower is blocked in its XREAD (a wake may interrupt those)
        self._reading: set[str] = set()
        self._changed = asyncio.Event()

    def wake(self) -> None:
        """The set of rooms changed or one is stale: re-check at once."""
        self._changed.set()
        for room_id, live in self.store.rooms.items():
            task = self._followers.get(room_id)
            if live.stale and room_id in self._reading and task is not None:
                task.cancel()  # its XREAD blocks; the supervisor starts it again

    async def run(self) -> None:
        store = self.store
        backoff = 0.1
        try:
            while not store.stopping:
                try:
                    if self.recover_needed:  # reaped while alive: every room, as on one Redis
                        await self._recover()
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except (RedisError, RedisClusterException, OSError) as exc:
                    logger.warning("redis cluster unavailable (%s); retrying", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                self._supervise()
                store.healthy = not self._failing
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), READ_BLOCK_MS / 1000)
        finally:
            await self.close()

    def _supervise(self) -> None:
        """A follower per loaded room; none for a room that was unloaded."""
        rooms = self.store.rooms
        loop = asyncio.get_running_loop()
        for room_id, task in list(self._followers.items()):
            if task.done():
                del self._followers[room_id]
            elif room_id not in rooms:
                task.cancel()
                del self._followers[room_id]
        for room_id in rooms:
            if room_id not in self._followers:
                self._followers[room_id] = loop.create_task(
                    self._follow(room_id), name=f"kasagi-redis-log-{room_id}")

    async def _follow(self, room_id: str) -> None:
        """Read one room's log on its primary until the room is unloaded."""
        store = self.store
        slot = slot_of_room(room_id)
        log = keys.log_key(room_id)
        connection: RawConnection | None = None
        node = ""
        backoff = 0.1
        asking = False
        try:
            while not store.stopping:
                live = store.rooms.get(room_id)
                if live is None:
                    return
                try:
                    await self.slots.ready()
                    if room_id in self.lost:
                        await self.recover_room(room_id, live, lost=True)
                        self.lost.discard(room_id)
                        logger.warning("room %s: its shard answers again; recovered with a "
                                       "new epoch", room_id)
                    if live.stale:
                        await self.reload(room_id, live)
                        continue
                    name, client = self.slots.primary(slot)
                    if connection is None or name != node:
                        if connection is not None:
                            await connection.drop()
                        connection, node = RawConnection(client), name
                    xread: tuple[Any, ...] = ("XREAD", "COUNT", 500, "BLOCK", READ_BLOCK_MS,
                                              "STREAMS", log, live.stream_id)
                    command = pack_command(xread)
                    batch = [pack_command(("ASKING",)), command] if asking else [command]
                    asking = False
                    self._reading.add(room_id)
                    try:
                        replies = await connection.exchange(batch, READ_BLOCK_MS / 1000 + 5)
                    finally:
                        self._reading.discard(room_id)
                    reply = replies[-1]
                    if isinstance(reply, MovedError):
                        self.slots.moved(reply)
                        await self.slots.refresh()
                        continue
                    if isinstance(reply, AskError):
                        await connection.drop()
                        connection = RawConnection(Redis(host=str(reply.host),
                                                         port=int(reply.port)))
                        node, asking = f"{reply.host}:{reply.port}", True
                        continue
                    if isinstance(reply, ResponseError) and _is_transient(reply):
                        await asyncio.sleep(REDIRECT_PAUSE)
                        self.slots.refresh_soon()
                        continue
                    if isinstance(reply, Exception):
                        raise reply
                    if reply:
                        self.on_entries(reply)
                    backoff = 0.1
                    if self._failing:
                        self._failing.discard(room_id)
                except asyncio.CancelledError:
                    raise
                except (RedisError, RedisClusterException, OSError) as exc:
                    if isinstance(exc, ResponseError) and not _is_transient(exc):
                        logger.exception("room %s: log read failed; reloading", room_id)
                        live.stale = True
                    else:
                        if room_id not in self._failing:
                            logger.warning("room %s: its redis primary %s is unavailable (%s)",
                                           room_id, node, exc)
                        self._failing.add(room_id)
                        self.lost.add(room_id)
                        self.slots.refresh_soon()
                    if connection is not None:
                        await connection.drop()
                        connection = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)
                except Exception:
                    logger.exception("room %s: log reader failed; reloading it", room_id)
                    live.stale = True
                    await asyncio.sleep(backoff)
        finally:
            if connection is not None:
                await connection.drop()

    async def close(self) -> None:
        tasks = list(self._followers.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._followers.clear()


def _slot_of_packed(packed: bytes) -> int:
    """The slot of a packed command's first key: ``EVALSHA sha n key…`` (the fourth
    argument) or ``COMMAND key …`` (the second)."""
    args: list[bytes] = []
    at = packed.index(b"\r\n") + 2
    while len(args) < 4 and at < len(packed):
        end = packed.index(b"\r\n", at)
        size = int(packed[at + 1:end])
        args.append(packed[end + 2:end + 2 + size])
        at = end + 2 + size + 2
    if args[0].upper() in (b"EVALSHA", b"EVAL", b"FCALL"):
        return key_slot(args[3])
    return key_slot(args[1])


def _is_transient(exc: ResponseError) -> bool:
    """A refusal that did not run the command and passes by itself (a fail-over,
    a migration, a demoted primary unblocking its readers)."""
    return isinstance(exc, _TRANSIENT) or str(exc).startswith(("UNBLOCKED", "LOADING",
                                                               "READONLY", "MASTERDOWN"))


__all__ = ["ClusterLogReader", "ClusterScripts", "cluster_client", "is_cluster"]
