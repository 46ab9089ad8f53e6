"""What the history (§15) costs the background writer, in this process, per second of
workload C: the CPU of writing 8,000 changes of 20 rooms (400 a room, one batch
with a snapshot of each room, as one ``KASAGI_SNAPSHOT_INTERVAL`` brings them)
once retention deletes as many as it inserts.

    python -m bench.history_writer                        # throwaway SQLite
    python -m bench.history_writer --kept 10000 --batches 44
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/kasagi_hw python -m bench.history_writer

A PostgreSQL database is created for the run and dropped after (it must not exist);
SQLite is a file in a temporary directory. Prints the writer thread's CPU ms per
batch after the first ``--skip`` batches (by then every room is past
``--kept`` plus the margin, so each batch also prunes): the whole batch
(``write_batch``: the snapshots, their pruning and sessions too), the history write,
the check for repeats, and the floor moves (``advance_floor``, ``advance_floors``); the last line is
``BENCH_HISTORY_WRITER {...}``. The server's own CPU under load is bench.compare's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import wraps
from inspect import signature
from typing import Any

import orjson


def timed(name: str, spent: dict[str, float], fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.thread_time() - started
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.history_writer", description=__doc__.split("\n")[0])
    parser.add_argument("--kept", type=int, default=2000, help="KASAGI_HISTORY_KEPT")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--players", type=int, default=400, help="players across the rooms")
    parser.add_argument("--changes", type=int, default=8000, help="changes a batch")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--skip", type=int, default=8, help="batches before measuring")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="kasagi-history-writer-")
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir}/history.sqlite3"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kasagi_project.settings")
    from bench.compare import fresh_database

    drop = fresh_database(url) if url.startswith(("postgres://", "postgresql://")) else None
    try:
        return measure(args, url)
    finally:
        if drop is not None:
            from django.db import connections

            connections.close_all()
            drop()
        shutil.rmtree(workdir, ignore_errors=True)


def measure(args: argparse.Namespace, url: str) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from rooms import history
    from rooms import persistence as writer
    from rooms.models import HistoryChunk, Room
    from sync.core.changes import Author, Change, ChangeKind

    call_command("migrate", verbosity=0)
    rooms = [Room.objects.create(room_id=f"hw-{i}").room_id for i in range(args.rooms)]
    authors = [Author.player(None, None, f"p{j}") for j in range(args.players)]
    versions = dict.fromkeys(rooms, 0)
    players: dict[str, dict[str, Any]] = {room: {} for room in rooms}
    spent: dict[str, float] = {}
    for module, name in ((writer, "write_batch"), (writer, "_write_history"),
                         (writer, "_stored_versions"), (history, "advance_floor")):
        setattr(module, name, timed(name, spent, getattr(module, name)))
    if hasattr(history, "advance_floors"):  # the floor moves to checkpoints, several at once
        history.advance_floors = timed("advance_floor", spent, history.advance_floors)

    floors: dict[int, int] = {}
    tops: dict[int, int] = {}  # the writer's caches, as BackgroundWriter keeps them
    players_written: dict[str, frozenset[str]] = {}
    caches: dict[str, dict[Any, Any]] = {"tops": tops, "pk_cache": {}}  # those it takes
    # (a tree from before the checkpoints runs too, to compare: copy this file into it)
    held = ({"checkpoints": history.Checkpoints(kept=args.kept)}
            if hasattr(history, "Checkpoints") else {})
    at_ms = int(time.time() * 1000)
    for number in range(args.batches):
        changes = []
        for k in range(args.changes):
            room, player = rooms[k % args.rooms], f"p{k % args.players}"
            version = versions[room]
            versions[room] = version + 1
            fields = {"x": (number * 7 + k) % 1000, "y": 500, "t": at_ms + k}
            players[room][player] = fields
            change = Change(ChangeKind.DELTA, version, version + 1,
                            {"players": {player: fields}})
            changes.append(writer.ChangeWrite(room, change, authors[k % args.players],
                                              at_ms + k))
        now = timezone.now()
        batch = writer.Batch(changes=changes, snapshots={
            room: writer.SnapshotWrite(room, versions[room],
                                       {"players": dict(players[room]), "entities": {}}, now)
            for room in rooms})
        if number == args.skip:
            spent.clear()
        with transaction.atomic():
            writer.write_batch(batch, kept=10, history_kept=args.kept, floors=floors, **held,
                               players_written=players_written,
                               **{name: cache for name, cache in caches.items()
                                  if name in signature(writer.write_batch).parameters})
        for room, snapshot in batch.snapshots.items():
            players_written[room] = writer.players_of(snapshot)
    measured = args.batches - args.skip
    per_batch = {name: round(seconds / measured * 1000, 1) for name, seconds in spent.items()}
    rows = sum(HistoryChunk.objects.values_list("count", flat=True))
    chunks = HistoryChunk.objects.count()
    summary = {"database": connection.vendor, "kept": args.kept, "changes": args.changes,
               "rooms": args.rooms, "batches_measured": measured, "cpu_ms_per_batch": per_batch,
               "records_at_end": rows, "chunks_at_end": chunks}
    print(f"{connection.vendor}: {args.changes} changes a batch, {args.rooms} rooms, kept "
          f"{args.kept}; writer CPU ms per batch over {measured}: whole batch "
          f"{per_batch.get('write_batch')}, history {per_batch.get('_write_history')}, "
          f"repeat check {per_batch.get('_stored_versions')}, "
          f"floor moves {per_batch.get('advance_floor')}; {rows} records in {chunks} chunks "
          "at the end")
    print("BENCH_HISTORY_WRITER " + orjson.dumps(summary).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
