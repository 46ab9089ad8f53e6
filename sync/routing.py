from django.urls import path

from .consumer import SyncConsumer

websocket_urlpatterns = [
    path("sync", SyncConsumer.as_asgi()),
]
