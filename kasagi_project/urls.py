"""URL map: admin, REST API, health/metrics, auth pages and the demo pages."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("rooms.api.urls")),
    path("api/", include("accounts.api_urls")),
    path("accounts/", include("accounts.urls")),
    path("", include("sync.urls")),
    path("", include("rooms.urls")),
]
