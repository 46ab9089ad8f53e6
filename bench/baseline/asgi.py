"""ASGI entry point of the baseline server, routed as in the Channels tutorial.

Run from the repository root:
``DJANGO_SETTINGS_MODULE=bench.baseline.settings daphne -p PORT bench.baseline.asgi:application``
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baseline.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up, as the Channels docs require.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .consumer import SyncConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The tutorial also wraps this in AllowedHostsOriginValidator, which refuses
        # handshakes without an Origin header; the load tool (like any non-browser
        # client of the contract) sends none, so the baseline leaves it out.
        "websocket": AuthMiddlewareStack(URLRouter([path("sync", SyncConsumer.as_asgi())])),
    }
)
