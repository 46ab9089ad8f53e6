"""The REST API's shapes (PROTOCOL.md §10): camelCase, exactly the contract's fields."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rooms.models import Room, Visibility
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


class RoomStateSerializer(serializers.Serializer):
    """The state of a room at ``version``, as a FULL_STATE would carry it."""

    roomId = serializers.CharField(source="room_id")
    version = serializers.IntegerField()
    state = StateField()
