"""ASGI entry point: HTTP to Django, WebSockets at /sync to the sync consumer.

WebSocket stack, outside in: Origin rule (§7) → Django session auth →
DRF token auth (a token overrides the cookie's user) → routing.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kasagi_project.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.middleware import TokenAuthMiddleware  # noqa: E402
from sync.origin import OriginCheckMiddleware  # noqa: E402
from sync.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginCheckMiddleware(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
