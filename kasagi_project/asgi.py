"""ASGI entry point: HTTP to Django, WebSockets at /sync to the sync consumer.

HTTP serves ``/static/`` itself when ``settings.SERVE_STATIC`` (default: DEBUG;
``KASAGI_SERVE_STATIC``), since plain daphne does not, unlike ``runserver``.

WebSockets: ``SyncConsumer.as_asgi`` checks the path and the Origin rule (§7),
then the consumer resolves the user once at connect: a DRF token
(``Authorization: Token`` or ``?token=``) wins over the Django session cookie.
No Channels middleware stack: each of its layers kept a scope copy and a
suspended coroutine alive per connection (see docs/performance.md).
"""

import os
from typing import Any

from asgiref.sync import markcoroutinefunction
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kasagi_project.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from accounts.middleware import user_for_handshake  # noqa: E402
from sync.consumer import SyncConsumer  # noqa: E402

http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.SERVE_STATIC else django_asgi_app
websocket_app = SyncConsumer.as_asgi(authenticate=user_for_handshake, path="/sync")


class ProtocolRouter:
    """Channels' ProtocolTypeRouter, minus its coroutine frame per connection.

    A plain callable that returns the chosen app's own coroutine for the server to run.
    It is marked as a coroutine function so that servers which inspect the app
    (uvicorn's ``--interface auto``) see an ASGI 3 application.
    """

    _asgi_single_callable = True

    @markcoroutinefunction
    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            return websocket_app(scope, receive, send)
        if scope["type"] == "http":
            return http_app(scope, receive, send)
        raise ValueError(f"no application for scope type {scope['type']!r}")


application = ProtocolRouter()
