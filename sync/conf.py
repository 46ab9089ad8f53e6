"""Every setting of the server, with its one default, in one table.

``SETTINGS`` lists each setting once: its name, default, the environment
variable that sets it, and what it means (the README's configuration table is
generated from it: ``python -m sync.conf README.md``). Settings named in lower
case are keys of ``settings.KASAGI``, read through :func:`kasagi_settings`;
upper-case ones are Django settings that ``kasagi_project/settings.py`` builds.
That file is the one place that reads the environment: it hands ``os.environ``
to :func:`from_environment` and :func:`environment_value`, which parse it here.

As DRF's settings do, a key of ``settings.KASAGI`` that is not in the table
raises ``ImproperlyConfigured`` naming it: a typo never silently becomes the
default. This module never reads ``os.environ`` itself.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .core.limits import Limits

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the table. ``kind`` parses the variable (``list``: comma-separated)."""

    name: str
    env: str
    default: Any
    kind: type
    meaning: str
    #: the default as the docs show it, when it is not the value itself
    shown: str | None = None

    @property
    def in_kasagi(self) -> bool:
        """A key of ``settings.KASAGI`` (else a Django setting of its own)."""
        return self.name.islower()


SETTINGS: tuple[Setting, ...] = (
    # Upper case: a Django setting that kasagi_project/settings.py builds from the
    # variable; lower case: a key of settings.KASAGI.
    Setting("DATABASES", "DATABASE_URL", None, str,
            "Django database (PostgreSQL: `postgresql://user@host/db`); unset: the file "
            "`db.sqlite3` in the project folder", shown="`sqlite:///db.sqlite3`"),
    Setting("redis_url", "REDIS_URL", None, str,
            "set: room state lives in Redis, so several processes share rooms; "
            "unset: one process, in memory"),
    Setting("SECRET_KEY", "DJANGO_SECRET_KEY", "dev-insecure-kasagi-sync-change-me", str,
            "as in any Django deployment (set it in production)", shown="dev value"),
    Setting("DEBUG", "DJANGO_DEBUG", True, bool, "as in any Django deployment"),
    Setting("ALLOWED_HOSTS", "DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]", list,
            "as in any Django deployment (comma-separated); also gates WebSocket `Origin`"),
    Setting("METRICS_ALLOWED_NETWORKS", "KASAGI_METRICS_NETWORKS", "127.0.0.0/8,::1/128", list,
            "who may read `/metrics` (comma-separated CIDRs)"),
    Setting("LOGGING", "KASAGI_LOG_LEVEL", "INFO", str, "root log level"),
    Setting("SERVE_STATIC", "KASAGI_SERVE_STATIC", None, bool,
            "daphne serves `/static/` itself (production: `collectstatic` behind nginx)",
            shown="= `DJANGO_DEBUG`"),
    Setting("grace_period", "KASAGI_GRACE_PERIOD", 60.0, float,
            "seconds a disconnected player is kept for reconnection"),
    Setting("tick_ms", "KASAGI_TICK_MS", 50, int, "delta batching tick per room (ms)"),
    Setting("max_players", "KASAGI_MAX_PLAYERS", 64, int, "default player limit of a room"),
    Setting("rate_limit", "KASAGI_RATE_LIMIT", 60.0, float,
            "messages per second per connection"),
    Setting("rate_burst", "KASAGI_RATE_BURST", 120, int, "burst of messages per connection"),
    Setting("max_frame_bytes", "KASAGI_MAX_FRAME_BYTES", 65536, int, "largest accepted frame"),
    Setting("max_player_state_bytes", "KASAGI_MAX_PLAYER_STATE_BYTES", 16384, int,
            "largest state of one player (bytes of JSON)"),
    Setting("max_room_state_bytes", "KASAGI_MAX_ROOM_STATE_BYTES", 1048576, int,
            "largest state of a room (bytes of JSON)"),
    Setting("max_depth", "KASAGI_MAX_DEPTH", 8, int, "deepest nesting of a payload"),
    Setting("max_key_length", "KASAGI_MAX_KEY_LENGTH", 64, int, "longest key in a payload"),
    Setting("auto_create_rooms", "KASAGI_AUTO_CREATE_ROOMS", True, bool,
            "create a public room on first JOIN_ROOM"),
    Setting("allow_anonymous", "KASAGI_ALLOW_ANONYMOUS", True, bool,
            "let anonymous sockets join public rooms"),
    Setting("snapshot_interval", "KASAGI_SNAPSHOT_INTERVAL", 1.0, float,
            "seconds between background snapshot writes of a changed room"),
    Setting("snapshots_kept", "KASAGI_SNAPSHOTS_KEPT", 10, int, "snapshots kept per room"),
    Setting("persistence", "KASAGI_PERSISTENCE", True, bool,
            "false: rooms and tokens live only in memory"),
    Setting("room_idle_unload", "KASAGI_ROOM_IDLE_UNLOAD", 30.0, float,
            "seconds a room nobody uses stays loaded in a process on Redis"),
    Setting("history", "KASAGI_HISTORY", True, bool,
            "(1.1) keep each room's change history"),
    Setting("history_kept", "KASAGI_HISTORY_KEPT", 10000, int,
            "(1.1) changes of history a room keeps, at least"),
    Setting("recovery_log", "KASAGI_RECOVERY_LOG", 1000, int,
            "(1.1) changes a room keeps for recovery by version, at least"),
)

BY_ENV: dict[str, Setting] = {setting.env: setting for setting in SETTINGS}
BY_KEY: dict[str, Setting] = {s.name: s for s in SETTINGS if s.in_kasagi}
KASAGI_DEFAULTS: dict[str, Any] = {key: s.default for key, s in BY_KEY.items()}


@dataclass(frozen=True, slots=True)
class KasagiSettings:
    """``settings.KASAGI`` read against the table (no defaults here: they are in SETTINGS)."""

    redis_url: str | None
    grace_period: float
    tick_ms: int
    max_players: int
    rate_limit: float
    rate_burst: int
    max_frame_bytes: int
    max_player_state_bytes: int
    max_room_state_bytes: int
    max_depth: int
    max_key_length: int
    auto_create_rooms: bool
    allow_anonymous: bool
    snapshot_interval: float
    snapshots_kept: int
    persistence: bool
    room_idle_unload: float
    history: bool
    history_kept: int
    recovery_log: int

    def limits(self) -> Limits:
        """The limits of the pure core (docs/protocol.md, errors), from these settings."""
        return Limits(**{f.name: getattr(self, f.name) for f in fields(Limits)})


if [f.name for f in fields(KasagiSettings)] != list(KASAGI_DEFAULTS):
    raise ImproperlyConfigured("sync.conf: KasagiSettings and SETTINGS list different keys")


def kasagi_settings() -> KasagiSettings:
    """``settings.KASAGI`` over the table's defaults; an unknown key or a value of the
    wrong type raises ``ImproperlyConfigured`` naming the key. Read on every call, so a
    test's settings change applies at once."""
    configured = getattr(settings, "KASAGI", {})
    for key, value in configured.items():
        _check(key, value)
    return KasagiSettings(**{**KASAGI_DEFAULTS, **configured})


def _check(key: str, value: Any) -> None:
    setting = BY_KEY.get(key)
    if setting is None:
        raise ImproperlyConfigured(
            f"settings.KASAGI has an unknown key {key!r}; known keys: "
            + ", ".join(sorted(KASAGI_DEFAULTS))
        )
    if value is None and setting.default is None:
        return
    kinds: tuple[type, ...] = (int, float) if setting.kind is float else (setting.kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and setting.kind is not bool):
        raise ImproperlyConfigured(
            f"settings.KASAGI[{key!r}] must be {setting.kind.__name__}, got {value!r}"
        )


# -- the environment ------------------------------------------------------------


def environment_value(environ: Mapping[str, str], env: str) -> Any:
    """The parsed value of one variable of the table; its default when unset or empty."""
    setting = BY_ENV[env]
    raw = environ.get(env)
    if raw is None or raw.strip() == "":
        # a list's default is written as its variable would be
        return parse(setting, setting.default) if setting.kind is list else setting.default
    return parse(setting, raw)


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """``settings.KASAGI`` as the environment sets it, every key of the table included."""
    return {key: environment_value(environ, s.env) for key, s in BY_KEY.items()}


def parse(setting: Setting, raw: str) -> Any:
    """A variable's text as its setting's type; ``ImproperlyConfigured`` names it when
    the text is not one (``KASAGI_TICK_MS=fast``, ``KASAGI_PERSISTENCE=maybe``)."""
    text = raw.strip()
    if setting.kind is bool:
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
    elif setting.kind is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    elif setting.kind is str:
        return text
    else:
        try:
            return setting.kind(text)
        except ValueError:
            pass
    expected = "true or false" if setting.kind is bool else f"a number ({setting.kind.__name__})"
    raise ImproperlyConfigured(f"{setting.env}={raw!r}: expected {expected}")


# -- the docs -------------------------------------------------------------------

TABLE_START = "<!-- settings table: generated by `python -m sync.conf README.md` -->"
TABLE_END = "<!-- end of the settings table -->"


def shown_default(setting: Setting) -> str:
    """The default as the docs write it."""
    if setting.shown is not None:
        return setting.shown
    value = setting.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return f"`{value}`"
    return str(value)


def markdown_table() -> str:
    """The README's configuration table, one row per variable."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.env}` | {shown_default(s)} | {s.meaning} |" for s in SETTINGS]
    return "\n".join(rows)


def with_table(text: str) -> str:
    """``text`` (a README) with its generated settings table replaced by the current one."""
    pattern = re.compile(re.escape(TABLE_START) + r".*?" + re.escape(TABLE_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"no {TABLE_START!r} … {TABLE_END!r} section")
    return pattern.sub(lambda _: f"{TABLE_START}\n{markdown_table()}\n{TABLE_END}", text)


if __name__ == "__main__":  # python -m sync.conf README.md
    for name in sys.argv[1:] or ["README.md"]:
        path = Path(name)
        path.write_text(with_table(path.read_text()))
