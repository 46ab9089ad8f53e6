"""Settings for the Kasagi Sync server.

The one place that reads the environment. Every variable is a row of
``sync.conf.SETTINGS`` (the README's configuration table is made from it),
which holds its one default and parses it, so the server runs with none set
(SQLite file, in-process channel layer and room state).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

from sync.conf import environment_value, from_environment

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str) -> Any:
    """The variable ``name`` parsed by its row of ``sync.conf.SETTINGS``."""
    return environment_value(os.environ, name)


SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env("DJANGO_DEBUG")
ALLOWED_HOSTS = env("DJANGO_ALLOWED_HOSTS")
#: settings.KASAGI, every key of the table (sync.conf.kasagi_settings reads it)
KASAGI = from_environment(os.environ)
REDIS_URL = KASAGI["redis_url"]

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
    "games",
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
        env("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        # 0: under ASGI every request's sync code may run in a thread of its own, and a
        # persistent connection per such thread exhausted PostgreSQL's max_connections
        # under a REST fuzzer (Django's docs advise against persistent connections
        # under ASGI). The message path never touches the database.
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the background writer and request threads share the file. IMMEDIATE:
    # a transaction takes the write lock when it begins, so a writer that would
    # collide waits (up to ``timeout`` seconds) instead of failing at once with
    # "database is locked" when it upgrades from reading to writing (SQLite cannot
    # wait then: another writer committed since its read).
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    options.setdefault("transaction_mode", "IMMEDIATE")
    options.setdefault("timeout", 20)
    DATABASES["default"]["CONN_MAX_AGE"] = 0

# No CHANNEL_LAYERS: Kasagi's fan-out, events included, rides its own room logs
# (docs/scaling.md, "Why events do not use the Channels layer").

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
SERVE_STATIC = DEBUG if env("KASAGI_SERVE_STATIC") is None else env("KASAGI_SERVE_STATIC")
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
METRICS_ALLOWED_NETWORKS = env("KASAGI_METRICS_NETWORKS")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("KASAGI_LOG_LEVEL")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
