"""REST routes under ``/api/`` (PROTOCOL.md §10), plus the OpenAPI schema and its viewer."""

from django.urls import path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .views import (
    NoSuchRoomApi,
    RoomDetailApi,
    RoomHistoryApi,
    RoomListCreateApi,
    RoomRestoreApi,
    RoomStateApi,
)


@extend_schema(exclude=True)  # the schema is not an operation for generated clients to call
class SchemaApi(SpectacularAPIView):
    pass


# roomId as in PROTOCOL §2
ROOM = r"(?P<roomId>[A-Za-z0-9_.-]{1,64})"  # named as in the contract (and the schema)

urlpatterns = [
    path("rooms/", RoomListCreateApi.as_view(), name="api-rooms"),
    re_path(rf"^rooms/{ROOM}/$", RoomDetailApi.as_view(), name="api-room"),
    re_path(rf"^rooms/{ROOM}/state/$", RoomStateApi.as_view(), name="api-room-state"),
    re_path(rf"^rooms/{ROOM}/history/$", RoomHistoryApi.as_view(), name="api-room-history"),
    re_path(rf"^rooms/{ROOM}/restore/$", RoomRestoreApi.as_view(), name="api-room-restore"),
    # After every rooms/ route: any other path there (a newline included, hence [\s\S])
    # is a JSON 404. It ends in / so APPEND_SLASH still redirects /api/rooms/x.
    re_path(r"^rooms/[\s\S]*/$", NoSuchRoomApi.as_view()),
    path("schema/", SchemaApi.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
