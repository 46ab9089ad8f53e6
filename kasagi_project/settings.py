"""Settings for the Kasagi Sync server.

The one place that reads the environment (PROTOCOL.md §9): every variable
has a default, so the server runs with none set (SQLite file, in-process
channel layer and room state).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "dev-insecure-kasagi-sync-change-me"
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if h.strip()
]
REDIS_URL = os.environ.get("REDIS_URL") or None

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "sync",
    "rooms",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "kasagi_project.urls"
ASGI_APPLICATION = "kasagi_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the background writer and request threads share the file.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# daphne serves /static/ itself (kasagi_project/asgi.py); turn off behind a web server.
SERVE_STATIC = env_bool("KASAGI_SERVE_STATIC", DEBUG)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Kasagi Sync API",
    "DESCRIPTION": "Rooms, live state and tokens of a Kasagi Sync server.",
    "VERSION": "1.0.0",
}

# Networks allowed to read /metrics (CIDR list).
METRICS_ALLOWED_NETWORKS = [
    n.strip()
    for n in os.environ.get("KASAGI_METRICS_NETWORKS", "127.0.0.0/8,::1/128").split(",")
    if n.strip()
]

KASAGI = {
    "grace_period": env_float("KASAGI_GRACE_PERIOD", 60.0),
    "tick_ms": env_int("KASAGI_TICK_MS", 50),
    "max_players": env_int("KASAGI_MAX_PLAYERS", 64),
    "rate_limit": env_float("KASAGI_RATE_LIMIT", 60.0),
    "rate_burst": env_int("KASAGI_RATE_BURST", 120),
    "max_frame_bytes": env_int("KASAGI_MAX_FRAME_BYTES", 65536),
    "max_player_state_bytes": env_int("KASAGI_MAX_PLAYER_STATE_BYTES", 16384),
    "max_room_state_bytes": env_int("KASAGI_MAX_ROOM_STATE_BYTES", 1048576),
    "max_depth": env_int("KASAGI_MAX_DEPTH", 8),
    "max_key_length": env_int("KASAGI_MAX_KEY_LENGTH", 64),
    "auto_create_rooms": env_bool("KASAGI_AUTO_CREATE_ROOMS", True),
    "allow_anonymous": env_bool("KASAGI_ALLOW_ANONYMOUS", True),
    "snapshot_interval": env_float("KASAGI_SNAPSHOT_INTERVAL", 1.0),
    "snapshots_kept": env_int("KASAGI_SNAPSHOTS_KEPT", 10),
    "persistence": env_bool("KASAGI_PERSISTENCE", True),
    "redis_url": REDIS_URL,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("KASAGI_LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
