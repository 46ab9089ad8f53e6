"""REST routes of accounts, under ``/api/``."""

from django.urls import path

from .api_views import TokenObtainApi

urlpatterns = [
    path("auth/token/", TokenObtainApi.as_view(), name="api-token"),
]
