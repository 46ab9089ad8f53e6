"""The REST API's shapes (PROTOCOL.md §10): camelCase, exactly the contract's fields."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rooms.models import ChangeKind, ChangeSource, Room, Visibility
from sync.core.envelope import ID_PATTERN
from sync.core.room_types import room_type_choices

MAX_PLAYERS_LIMIT = 10_000


class RoomInputSerializer(serializers.Serializer):
    """A room to create; only ``roomId`` is required."""

    roomId = serializers.RegexField(
        rf"^{ID_PATTERN.pattern}\Z",  # RegexField searches: anchor both ends
        max_length=64,
        trim_whitespace=False,
        error_messages={"invalid": "roomId must be 1 to 64 characters of A-Z a-z 0-9 _ . -"},
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    roomType = serializers.ChoiceField(choices=[], required=False, default="freeform")
    visibility = serializers.ChoiceField(
        choices=Visibility.choices, required=False, default=Visibility.PUBLIC
    )
    maxPlayers = serializers.IntegerField(
        min_value=1, max_value=MAX_PLAYERS_LIMIT, required=False, allow_null=True, default=None
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Room types are registered at run time (a site may add its own).
        self.fields["roomType"].choices = room_type_choices()

    def validate_roomId(self, value: str) -> str:
        if not ID_PATTERN.fullmatch(value):
            raise serializers.ValidationError(self.fields["roomId"].error_messages["invalid"])
        if Room.objects.filter(room_id=value).exists():  # closed rooms keep their id
            raise serializers.ValidationError("a room with this roomId already exists")
        return value


class RoomSerializer(serializers.Serializer):
    """A room; ``playerCount`` and ``version`` are live (or from its latest snapshot)."""

    roomId = serializers.CharField(source="room_id")
    name = serializers.CharField()
    roomType = serializers.CharField(source="room_type")
    visibility = serializers.ChoiceField(choices=Visibility.choices)
    maxPlayers = serializers.IntegerField(source="max_players")
    playerCount = serializers.IntegerField(source="player_count")
    version = serializers.IntegerField()
    createdAt = serializers.DateTimeField(source="created_at")


class StateDocumentSerializer(serializers.Serializer):
    """A room state (PROTOCOL.md §4): players and shared entities."""

    # The schema's shape of ``StateField``; never used to render.
    players = serializers.DictField(
        child=serializers.DictField(), help_text="One object per player, by playerId."
    )
    entities = serializers.DictField(
        child=serializers.DictField(), help_text="Shared objects, by entityId."
    )


@extend_schema_field(StateDocumentSerializer)
class StateField(serializers.JSONField):
    """The state as it is (no per-key walk over up to 1 MiB), declared as its shape."""


class PatchDocumentSerializer(serializers.Serializer):
    """A merge patch of a room state: only what changed, ``null`` for what was removed."""

    # The schema's shape of ``PatchField``; never used to render.
    players = serializers.DictField(
        child=serializers.DictField(allow_null=True), required=False,
        help_text="Patches of player objects, by playerId (null: the player left).")
    entities = serializers.DictField(
        child=serializers.DictField(allow_null=True), required=False,
        help_text="Patches of entities, by entityId (null: deleted).")


@extend_schema_field(PatchDocumentSerializer)
class PatchField(serializers.JSONField):
    """A merge patch as it is, declared as its shape."""


class RoomStateSerializer(serializers.Serializer):
    """The state of a room at ``version``, as a FULL_STATE would carry it."""

    roomId = serializers.CharField(source="room_id")
    version = serializers.IntegerField()
    state = StateField()


# -- history (§15) ---------------------------------------------------------------


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True})
class UserIdField(serializers.JSONField):
    """A user's primary key: an integer, or the string form of any other key (a UUID)."""

    def to_representation(self, value: Any) -> Any:
        return value if value is None or type(value) is int else str(value)


class HistoryRecordSerializer(serializers.Serializer):
    """One change of the room: who made it, and the merge patch it made."""

    version = serializers.IntegerField()
    baseVersion = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ChangeKind.choices)
    playerId = serializers.CharField(allow_null=True)
    userId = UserIdField(allow_null=True)
    username = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=ChangeSource.choices)
    patch = PatchField(help_text="The merge patch of the room state (a DELTA_UPDATE payload).")
    timestamp = serializers.IntegerField(help_text="When, in epoch milliseconds.")


class HistoryPageSerializer(serializers.Serializer):
    """A page of the history, oldest first; ``next`` is the next page's URL, or null."""

    results = HistoryRecordSerializer(many=True)
    next = serializers.URLField(allow_null=True)


class HistoryQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0, required=False, default=0,
        help_text="List the changes after this version (default: from the oldest kept).")
    limit = serializers.IntegerField(
        min_value=1, max_value=1000, required=False, default=100,
        help_text="At most this many changes (1 to 1000).")


class StateQuerySerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=0, required=False, max_value=2**62,
        help_text="The state right after this version, from the history (§15); "
        "default: the live state.")


class RestoreInputSerializer(serializers.Serializer):
    """The version to set the room back to."""

    version = serializers.IntegerField(min_value=0, max_value=2**62)


class RestoreSerializer(serializers.Serializer):
    """The room version after the restore."""

    version = serializers.IntegerField()
