"""The configurable limits of PROTOCOL.md §8, as one immutable value.

Pure core: no Django here. The defaults below let core code and its tests
build ``Limits()`` alone; they are the defaults of ``sync.conf.SETTINGS``
(the one table), and tests/test_settings.py fails if they drift apart. The
server builds its ``Limits`` from the settings (``KasagiSettings.limits``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = 65536
    max_player_state_bytes: int = 16384
    max_room_state_bytes: int = 1048576
    max_players: int = 64
    max_depth: int = 8
    max_key_length: int = 64
    rate_limit: float = 60.0
    rate_burst: int = 120
