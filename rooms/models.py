"""Rooms, their snapshots and the players' session tokens, as Django models.

The engine never reads these on the message path: a room's row is read once
when the room is activated, and writes go through the background writer
(``rooms.persistence``). The admin and the REST API read them directly.
"""

from __future__ import annotations

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


class RoomSnapshot(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="snapshots")
    version = models.PositiveBigIntegerField()
    state = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        get_latest_by = "version"
        constraints = [
            models.UniqueConstraint(fields=["room", "version"], name="snapshot_room_version_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.room.room_id} v{self.version}"


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
