"""Rooms, their snapshots and the players' session tokens, as Django models.

The engine never reads these on the message path: a room's row is read once
when the room is activated, and writes go through the background writer
(``rooms.persistence``). The admin and the REST API read them directly.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from sync.core.envelope import ID_PATTERN
from sync.core.room_types import room_type_choices

room_id_validator = RegexValidator(ID_PATTERN.pattern, "1–64 characters of A–Z a–z 0–9 _ . -")


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public (anyone)"
    LOGIN = "login", "Logged-in users"
    PRIVATE = "private", "Members, owner and staff"


class Room(models.Model):
    room_id = models.CharField(
        "room id", max_length=64, unique=True, validators=[room_id_validator],
        help_text="The protocol's roomId.",
    )
    name = models.CharField(max_length=200, blank=True)
    room_type = models.CharField(max_length=32, default="freeform", choices=room_type_choices)
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="owned_rooms",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="member_rooms",
        help_text="Who may join a private room (besides its owner and staff).",
    )
    max_players = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: the server's KASAGI_MAX_PLAYERS."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["visibility", "closed_at"], name="room_listing_idx")]

    def __str__(self) -> str:
        return self.name or self.room_id

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class StateEncoder(json.JSONEncoder):
    """A snapshot's state through orjson: the writer stores every loaded room's state
    each interval, and the standard library's encoder took ~5 ms for a 1,000-player
    room (orjson: ~0.5 ms, and compact). The text is the same JSON either way; what
    orjson refuses (an integer beyond 64 bits) goes through the standard encoder."""

    def encode(self, o: Any) -> str:
        try:
            return orjson.dumps(o).decode()
        except TypeError:
            return super().encode(o)


class RoomSnapshot(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="snapshots")
    version = models.PositiveBigIntegerField()
    state = models.JSONField(encoder=StateEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        get_latest_by = "version"
        constraints = [
            models.UniqueConstraint(fields=["room", "version"], name="snapshot_room_version_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.room.room_id} v{self.version}"


class RoomDocument(models.Model):
    """A room's Yjs document (§16), compacted: its whole merged state as one v1 update
    (``encodeStateAsUpdate``), rewritten in place by the background writer, so the
    table holds one row per document however many updates made it."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="documents")
    doc_id = models.CharField("document id", max_length=64, validators=[room_id_validator])
    state = models.BinaryField()
    size = models.PositiveIntegerField(help_text="Bytes of the encoded state.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["room", "doc_id"]
        constraints = [
            models.UniqueConstraint(fields=["room", "doc_id"], name="document_room_doc_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.room.room_id}/{self.doc_id}"


class EndReason(models.TextChoices):
    LEFT = "left", "Left"
    TIMEOUT = "timeout", "Grace period ran out"
    KICKED = "kicked", "Kicked"
    CLOSED = "closed", "Room closed"


class PlayerSession(models.Model):
    """A resumable player: only the SHA-256 of its token is stored, never the token."""

    token_hash = models.CharField(max_length=64, unique=True)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="sessions")
    player_id = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="player_sessions",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["room", "player_id"], name="session_live_idx",
                condition=Q(ended_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.player_id} in {self.room.room_id}"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class ChangeKind(models.TextChoices):
    """What a history record's change was (PROTOCOL.md §15)."""

    JOIN = "join", "Joined"
    LEAVE = "leave", "Left"
    UPDATE = "update", "Player update"
    ENTITY = "entity", "Entity update"
    SERVER = "server", "Server change"
    RESET = "reset", "Reset"
    RESTORE = "restore", "Restore"
    CONFIG = "config", "Configuration"


class ChangeSource(models.TextChoices):
    PLAYER = "player", "Player"
    SERVER = "server", "Server (room code, grace period)"
    ADMIN = "admin", "Administrator"
    API = "api", "API"


class HistoryChunk(models.Model):
    """A run of one room's history records (§15), in version order, as one row.

    The background writer (``rooms.persistence``) writes a room's records of one
    batch (at most ``CHUNK_RECORDS``) as one chunk: a row per change cost the
    database ~7 µs of C and the writer ~15 µs of Python with the GIL, ~15 % of a
    core at workload C's 8,000 changes a second; a chunk of 400 costs one insert.
    ``records`` is the JSON array ``rooms.history.Record`` reads (orjson text, not a
    JSONField: Django's ``json.dumps`` of 400 records would cost what the rows did).
    A room keeps at least ``KASAGI_HISTORY_KEPT`` records; retention drops whole
    chunks and cuts the one across its new floor."""

    #: at most this many records a chunk (a busy room's batch is split)
    CHUNK_RECORDS = 500

    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="history_chunks", db_index=False,
    )
    #: the ``baseVersion`` of the chunk's first record
    base_version = models.PositiveBigIntegerField()
    #: the ``version`` of its last record
    version = models.PositiveBigIntegerField()
    count = models.PositiveIntegerField()
    records = models.TextField()

    class Meta:
        ordering = ["room", "version"]
        constraints = [
            # the index of every query by room and version, and what makes a chunk
            # written twice (a retried batch) one (ON CONFLICT DO NOTHING)
            models.UniqueConstraint(fields=["room", "version"], name="chunk_room_version_uniq"),
        ]
        indexes = [
            # reads go by first version (the floor, and runs in order)
            models.Index(fields=["room", "base_version"], name="chunk_room_base_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.room_id} v{self.base_version + 1}–{self.version}"


class RoomChange(models.Model):
    """A change made by a logged-in user, indexed by user (§15: "who changed what"):
    the admin's "changes by this user" across rooms, and the user's SET_NULL when
    the user row goes. The history itself is :class:`HistoryChunk`, which holds
    every change (these too); anonymous players' and room code's changes, the
    bulk of a game's, get no row here. Pruned with the history."""

    #: no index of its own: the unique (room, version) serves every query by room, and
    #: each index is written once per change and again when retention deletes it
    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="changes", db_index=False,
    )
    version = models.PositiveBigIntegerField()
    base_version = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=16, choices=ChangeKind.choices)
    player_id = models.CharField(max_length=64, null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="room_changes", db_index=False,  # change_by_user_idx serves it
    )
    #: kept when the user row goes (the record still says who it was)
    username = models.CharField(max_length=150, null=True, blank=True)
    source = models.CharField(max_length=16, choices=ChangeSource.choices)
    #: shaped like a DELTA_UPDATE payload: ``{"players": {...}, "entities": {...}}``
    patch = models.JSONField()
    #: when the change was made, epoch milliseconds
    timestamp = models.BigIntegerField()

    class Meta:
        verbose_name = "change by a user"
        verbose_name_plural = "changes by users"
        ordering = ["room", "version"]
        get_latest_by = "version"
        constraints = [
            # one row per change however often it is handed over (ignore_conflicts), and
            # the index of retention's deletes by room and version
            models.UniqueConstraint(fields=["room", "version"], name="change_room_version_uniq"),
        ]
        indexes = [
            # "changes by this user", newest first (the admin's filter), and the user's
            # SET_NULL on delete. Partial: rows from before 0005 may have no user, and
            # a run of equal NULL keys made every delete by retention search it.
            models.Index(fields=["user", "-timestamp"], name="change_by_user_idx",
                         condition=Q(user__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.room.room_id} v{self.version} {self.kind}"
