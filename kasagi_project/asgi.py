"""ASGI entry point: HTTP to Django, WebSockets at /sync to the sync consumer.

HTTP serves ``/static/`` itself when ``settings.SERVE_STATIC`` (default: DEBUG;
``KASAGI_SERVE_STATIC``), since plain daphne does not, unlike ``runserver``.

WebSocket stack, outside in: Origin rule (§7) → Django session auth →
DRF token auth (a token overrides the cookie's user) → routing.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kasagi_project.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from accounts.middleware import TokenAuthMiddleware  # noqa: E402
from sync.origin import OriginCheckMiddleware  # noqa: E402
from sync.routing import websocket_urlpatterns  # noqa: E402

http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.SERVE_STATIC else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": OriginCheckMiddleware(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
