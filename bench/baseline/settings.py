"""Settings of the baseline server (bench/baseline), the one place it reads the environment.

A tutorial-sized Django project: no models of its own, an in-memory SQLite
database that nothing queries (the auth middleware only needs it to exist),
InMemoryChannelLayer by default and RedisChannelLayer when REDIS_URL is set.
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "bench-baseline-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ASGI_APPLICATION = "bench.baseline.asgi.application"
USE_TZ = True

REDIS_URL = os.environ.get("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
