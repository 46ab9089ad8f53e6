"""Kasagi's settings, read from ``settings.KASAGI`` (filled from the environment
in ``kasagi_project/settings.py``, the one place that reads it)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from django.conf import settings

from .core.limits import Limits


@dataclass(frozen=True, slots=True)
class KasagiSettings:
    grace_period: float = 60.0
    tick_ms: int = 50
    max_players: int = 64
    rate_limit: float = 60.0
    rate_burst: int = 120
    max_frame_bytes: int = 65536
    max_player_state_bytes: int = 16384
    max_room_state_bytes: int = 1048576
    max_depth: int = 8
    max_key_length: int = 64
    auto_create_rooms: bool = True
    allow_anonymous: bool = True
    snapshot_interval: float = 1.0
    snapshots_kept: int = 10
    persistence: bool = True
    redis_url: str | None = None
    room_idle_unload: float = 300.0

    def limits(self) -> Limits:
        return Limits(
            max_frame_bytes=self.max_frame_bytes,
            max_player_state_bytes=self.max_player_state_bytes,
            max_room_state_bytes=self.max_room_state_bytes,
            max_players=self.max_players,
            max_depth=self.max_depth,
            max_key_length=self.max_key_length,
            rate_limit=self.rate_limit,
            rate_burst=self.rate_burst,
        )


def kasagi_settings() -> KasagiSettings:
    configured = getattr(settings, "KASAGI", {})
    known = {f.name for f in fields(KasagiSettings)}
    return KasagiSettings(**{k: v for k, v in configured.items() if k in known})
