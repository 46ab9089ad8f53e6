"""The history writer (§15) on the test database: records with their authors, written
once however often they are handed over, the state at any kept version, and
retention that keeps the table bounded and every kept version answerable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from rooms import history
from rooms.models import HistoryChunk, Room, RoomChange, RoomSnapshot
from rooms.persistence import Batch, ChangeWrite, Rewind, SnapshotWrite, write_batch
from sync.core.changes import SERVER, Author, Change, HistoryKind, LeaveReason, Source
from sync.core.limits import Limits
from sync.core.room import Room as CoreRoom
from sync.core.room_types import get_room_type

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Played:
    """A core room played by a script: its changes, authors and the state after each."""

    def __init__(self, room_id: str, author: Author) -> None:
        self.room = CoreRoom(room_id, get_room_type("freeform"), Limits())
        self.room_id = room_id
        self.author = author
        self.writes: list[ChangeWrite | Rewind] = []
        self.states: dict[int, dict[str, Any]] = {0: self.room.snapshot()}

    def diverge(self, version: int) -> Played:
        """The room as a replica that knew it only up to ``version`` (Redis lost the
        rest): same room, a new timeline from there."""
        other = Played(self.room_id, self.author)
        other.room = CoreRoom(self.room_id, get_room_type("freeform"), Limits(),
                              state=self.states[version], version=version)
        other.states = {v: s for v, s in self.states.items() if v <= version}
        return other

    def record(self, change: Change | None, author: Author | None = None) -> None:
        assert change is not None
        self.writes.append(ChangeWrite(self.room_id, change, author or self.author,
                                       1_700_000_000_000 + change.version))
        self.states[change.version] = self.room.snapshot()

    def play(self, n: int) -> None:
        for i in range(n):
            self.record(self.room.update_entity("doc", {"n": i, f"k{i % 7}": i}, player_id="p"))

    def snapshot(self) -> SnapshotWrite:
        return SnapshotWrite(self.room_id, self.room.version, self.room.snapshot(), T0)


def write(played: Played, writes: list[ChangeWrite | Rewind], *, kept: int = 10_000,
          floors: dict[int, int] | None = None, snapshot: bool = True,
          checkpoints: history.Checkpoints | None = None) -> None:
    batch = Batch(changes=list(writes))
    if snapshot:
        batch.snapshots[played.room_id] = played.snapshot()
    write_batch(batch, kept=2, history_kept=kept, floors=floors, checkpoints=checkpoints)


def count_replays(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The versions retention replays the records to (``history.state_at``), as it goes."""
    replayed: list[int] = []
    replay = history.state_at

    def counting_state_at(room_pk: int, version: int, **kwargs: Any) -> Any:
        replayed.append(version)
        return replay(room_pk, version, **kwargs)

    monkeypatch.setattr(history, "state_at", counting_state_at)
    return replayed


def test_records_carry_kind_author_and_patch_and_repeats_are_written_once() -> None:
    user = get_user_model().objects.create_user("alice", password="pw")
    Room.objects.create(room_id="h-1")
    played = Played("h-1", Author.player(user.pk, "alice", "p-1"))
    played.record(played.room.join("p-1", {"name": "A"}, now=0))
    played.record(played.room.update_player("p-1", {"x": 1}, now=0))
    played.record(played.room.update_entity("doc", {"t": "hi"}, player_id="p-1"))
    played.record(played.room.reset(), SERVER.doing(HistoryKind.RESET))
    played.record(played.room.leave("p-1", LeaveReason.TIMEOUT), SERVER)
    write(played, played.writes)
    write(played, played.writes + played.writes)  # a retry, a lease that moved: no repeat

    room = Room.objects.get(room_id="h-1")
    rows = list(history.records(room.pk))
    assert [(r.version, r.base_version, r.kind, r.source) for r in rows] == [
        (1, 0, "join", "player"), (2, 1, "update", "player"), (3, 2, "entity", "player"),
        (4, 3, "reset", "server"), (5, 4, "leave", "server"),
    ]
    assert rows[1].user_id == user.pk and rows[1].username == "alice"
    assert rows[1].player_id == "p-1" and rows[4].player_id == "p-1"
    assert rows[1].patch == {"players": {"p-1": {"x": 1}}}
    assert rows[4].user_id is None and rows[0].timestamp == 1_700_000_000_001
    for version, state in played.states.items():
        assert history.state_at(room.pk, version) == state
    # the per-user index holds the logged-in user's changes, once each
    assert list(RoomChange.objects.filter(room=room).values_list("version", "user_id")) == [
        (1, user.pk), (2, user.pk), (3, user.pk)]
    assert history.record_count(room.pk) == 5


def test_a_deleted_user_leaves_the_record_with_its_name() -> None:
    Room.objects.create(room_id="h-2")
    played = Played("h-2", Author(Source.ADMIN, 987_654, "gone"))  # no such user row
    played.play(2)
    write(played, played.writes)
    room = Room.objects.get(room_id="h-2")
    record = next(history.records(room.pk))
    assert (record.version, record.user_id, record.username, record.source) == (
        1, None, "gone", "admin")
    assert not RoomChange.objects.filter(room=room).exists()


def test_retention_keeps_the_table_bounded_and_every_kept_version_answerable() -> None:
    room = Room.objects.create(room_id="h-3")
    played = Played("h-3", Author.player())
    kept, floors = 50, {}
    for _ in range(30):
        start = len(played.writes)
        played.play(20)
        write(played, played.writes[start:], kept=kept, floors=floors)
        count = history.record_count(room.pk)
        assert count <= kept + history.prune_margin(kept) + 20
    count = history.record_count(room.pk)
    assert kept <= count <= kept + history.prune_margin(kept)
    floor = history.floor_of(room.pk)
    assert floor is not None and floor > 0  # older records were pruned
    assert RoomSnapshot.objects.filter(room=room, version=floor).exists()  # kept as the base
    assert RoomSnapshot.objects.filter(room=room).count() <= 3  # 2 newest + the floor
    for version in range(floor, played.room.version + 1):
        assert history.state_at(room.pk, version) == played.states[version], version
    assert history.state_at(room.pk, floor - 1) is None


def test_a_history_with_no_known_start_begins_again_at_a_snapshot() -> None:
    room = Room.objects.create(room_id="h-4")
    played = Played("h-4", Author.player())
    played.play(10)
    # Only the changes after 4 reach the writer (history turned on late), with a
    # snapshot at 10: nothing before 10 can be computed, so the history starts there.
    write(played, played.writes[4:])
    assert history.floor_of(room.pk) is None or history.floor_of(room.pk) >= 10
    played.play(5)
    write(played, played.writes[10:])
    floor = history.floor_of(room.pk)
    assert floor == 10
    for version in range(10, 16):
        assert history.state_at(room.pk, version) == played.states[version]


def test_a_gap_in_the_records_is_not_papered_over() -> None:
    room = Room.objects.create(room_id="h-5")
    played = Played("h-5", Author.player())
    played.play(8)
    write(played, played.writes[:3], snapshot=False)
    write(played, played.writes[5:], snapshot=False)
    assert history.state_at(room.pk, 3) == played.states[3]
    assert history.state_at(room.pk, 6) is None  # 4 and 5 are missing


def test_a_new_timeline_replaces_the_records_and_snapshots_of_the_lost_one() -> None:
    """§14/§15: Redis lost versions 7..10 and the room goes on from 6 in a new epoch;
    its history is the new timeline's, not the old one's under the same versions."""
    room = Room.objects.create(room_id="h-rewind")
    old = Played("h-rewind", Author.player())
    floors: dict[int, int] = {}
    old.play(8)
    write(old, old.writes, floors=floors)  # records 1..8, snapshot at 8
    old.play(2)
    write(old, old.writes[8:], floors=floors)  # records 9, 10, snapshot at 10
    old.play(1)
    new = old.diverge(6)
    new.record(new.room.update_entity("other", {"z": 1}, player_id="q"))
    new.record(new.room.update_entity("other", {"z": 2}, player_id="q"))
    # One batch: the old timeline's record 11, read before the rewind, then the new.
    write(new, [old.writes[10], Rewind("h-rewind", 6), *new.writes], floors=floors)
    versions = [(r.version, r.patch) for r in history.records(room.pk)]
    assert [v for v, _ in versions] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert versions[6][1] == {"entities": {"other": {"z": 1}}}
    assert not RoomSnapshot.objects.filter(room=room, version__gt=8).exists()
    assert RoomSnapshot.objects.get(room=room, version=8).state == new.states[8]
    for version in range(0, 9):
        assert history.state_at(room.pk, version) == new.states[version], version
    # and the new timeline goes on past where the old one had reached
    start = len(new.writes)
    new.play(4)
    write(new, new.writes[start:], floors=floors)
    for version in range(0, 13):
        assert history.state_at(room.pk, version) == new.states[version], version


def test_changes_older_than_the_kept_history_are_not_written_back() -> None:
    """A new Redis lease holder hands over its room's whole log again; what retention
    already dropped stays dropped, and the floor snapshot stays."""
    room = Room.objects.create(room_id="h-6")
    played = Played("h-6", Author.player())
    kept, floors = 50, {}
    for _ in range(10):
        start = len(played.writes)
        played.play(20)
        write(played, played.writes[start:], kept=kept, floors=floors)
    floor = history.floor_of(room.pk)
    assert floor is not None and floor > 0
    write(played, played.writes, kept=kept, floors=floors)  # everything again
    assert history.floor_of(room.pk) == floor
    assert history.state_at(room.pk, floor) == played.states[floor]


def test_retention_moves_the_floor_to_a_snapshot_it_wrote_without_a_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The writer's checkpoints: the floor lands on a version a batch's snapshot held
    (every 20 here), not on ``newest - kept``, and stays answerable and bounded."""
    room = Room.objects.create(room_id="h-7")
    played = Played("h-7", Author.player())
    kept, floors = 50, {}
    checkpoints = history.Checkpoints(kept=kept)
    replayed = count_replays(monkeypatch)
    for _ in range(30):
        start = len(played.writes)
        played.play(20)
        write(played, played.writes[start:], kept=kept, floors=floors, checkpoints=checkpoints)
        count = history.record_count(room.pk)
        assert count <= kept + history.prune_margin(kept) + 20
    monkeypatch.undo()
    assert replayed == []  # every move of the floor went to a checkpoint
    count = history.record_count(room.pk)
    assert kept <= count <= kept + history.prune_margin(kept)
    floor = history.floor_of(room.pk)
    assert floor is not None and floor > 0 and floor % 20 == 0
    assert RoomSnapshot.objects.filter(room=room).count() <= 3  # 2 newest + the floor
    for version in range(floor, played.room.version + 1):
        assert history.state_at(room.pk, version) == played.states[version], version
    assert history.state_at(room.pk, floor - 1) is None


def test_checkpoints_are_spaced_bounded_and_found_below_a_target() -> None:
    checkpoints = history.Checkpoints(kept=1000, max_rooms=2)  # step: margin 100 / 2
    assert checkpoints.step == 50
    for version in range(0, 400, 20):  # held: 0, 60, 120, ... (at least 50 apart)
        checkpoints.add(1, version, {"v": version})
    assert checkpoints.best(1, above=0, at_most=130) == (120, {"v": 120})
    assert checkpoints.best(1, above=120, at_most=170) is None  # none above the floor
    checkpoints.drop_below(1, 200)
    assert checkpoints.best(1, above=0, at_most=239) is None
    assert checkpoints.best(1, above=0, at_most=260) == (240, {"v": 240})
    checkpoints.add(1, 10, {"v": 10})  # the room started again lower: the rest goes
    assert checkpoints.best(1, above=0, at_most=400) == (10, {"v": 10})
    checkpoints.add(2, 5, {})
    checkpoints.add(3, 5, {})  # a third room: the one changed least recently goes
    assert checkpoints.best(1, above=0, at_most=400) is None
    assert checkpoints.best(3, above=0, at_most=400) == (5, {})


def test_overlapping_chunks_read_as_one_run_each_version_once() -> None:
    """Two writers (a Redis lease that moved) may store overlapping runs of one room:
    reads merge them in version order, each version once."""
    room = Room.objects.create(room_id="h-overlap")
    played = Played("h-overlap", Author.player())
    played.play(12)
    rows = [(w.change.version, w.change.base_version, "entity", "p", None, None, "player",
             w.change.patch, w.at_ms) for w in played.writes if isinstance(w, ChangeWrite)]
    for first, last in ((0, 8), (4, 12), (2, 6)):  # runs 1–8, 5–12, 3–6
        part = rows[first:last]
        HistoryChunk.objects.create(room=room, base_version=part[0][1], version=part[-1][0],
                                    count=len(part), records=history.encode_records(part))
    assert [r.version for r in history.records(room.pk)] == list(range(1, 13))
    assert [r.version for r in history.records(room.pk, after=3, upto=9)] == list(range(4, 10))
    for version in range(0, 13):
        assert history.state_at(room.pk, version) == played.states[version], version
    # retention across them: whole runs below go, the runs across the floor are cut
    history.drop_through(room.pk, 7)
    assert [r.version for r in history.records(room.pk)] == list(range(8, 13))
    assert history.floor_of(room.pk) == 7


def test_a_deleted_users_changes_keep_the_name_and_lose_the_id() -> None:
    user = get_user_model().objects.create_user("bob", password="pw")
    room = Room.objects.create(room_id="h-bob")
    played = Played("h-bob", Author.player(user.pk, "bob", "p-1"))
    played.play(3)
    write(played, played.writes)
    page = history.history_page(room=room, after=0, limit=10, private=False)
    assert [r["userId"] for r in page.records] == [user.pk] * 3
    user.delete()
    page = history.history_page(room=room, after=0, limit=2, private=False)
    assert [(r["userId"], r["username"]) for r in page.records] == [(None, "bob")] * 2
    assert page.next_after == 2
    assert list(RoomChange.objects.filter(room=room).values_list("user_id", flat=True)) == [
        None] * 3


def test_several_rooms_move_their_floors_at_once_each_to_its_own_version() -> None:
    """``advance_floors``, as a batch of the writer moves several floors to checkpoints:
    each room's chunk across its new floor is cut at that room's version, no other."""
    moved = []
    for room_id, count, floor in (("h-m1", 30, 10), ("h-m2", 40, 25), ("h-m3", 20, 5)):
        room = Room.objects.create(room_id=room_id)
        played = Played(room_id, Author.player())
        played.play(count)
        write(played, played.writes)  # one chunk of every record
        moved.append((room, played, floor))
    history.advance_floors({room.pk: (floor, played.states[floor])
                            for room, played, floor in moved})
    for room, played, floor in moved:
        assert history.floor_of(room.pk) == floor
        assert history.record_count(room.pk) == played.room.version - floor
        assert RoomSnapshot.objects.filter(room=room, version=floor).exists()
        for version in range(floor, played.room.version + 1):
            assert history.state_at(room.pk, version) == played.states[version], version
        assert history.state_at(room.pk, floor - 1) is None


def test_a_room_that_changes_faster_than_it_keeps_moves_its_floor_without_a_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch brings more changes than the room keeps (a world room: 10,000 a second
    against KASAGI_HISTORY_KEPT 10,000): the floor goes to the previous batch's
    snapshot, a batch further back than the exact target, instead of replaying."""
    room = Room.objects.create(room_id="h-fast")
    played = Played("h-fast", Author.player())
    kept, floors = 50, {}
    checkpoints = history.Checkpoints(kept=kept)
    replayed = count_replays(monkeypatch)
    for _ in range(12):
        start = len(played.writes)
        played.play(200)  # more than kept + margin (150) a batch
        write(played, played.writes[start:], kept=kept, floors=floors, checkpoints=checkpoints)
        count = history.record_count(room.pk)
        assert count <= 2 * (kept + history.prune_margin(kept))
    monkeypatch.undo()
    assert replayed == [150]  # only the first move: no snapshot below its target yet
    floor = history.floor_of(room.pk)
    assert floor is not None and floor % 200 == 0 and played.room.version - floor >= kept
    for version in range(floor, played.room.version + 1):
        assert history.state_at(room.pk, version) == played.states[version], version
