"""HTTP routes of the engine: health and metrics (PROTOCOL.md §10)."""

from django.urls import path

from . import http

urlpatterns = [
    path("healthz", http.healthz, name="healthz"),
    path("metrics", http.metrics, name="metrics"),
]
