"""The rooms REST API (PROTOCOL.md §10): thin views over selectors and services.

Each view authenticates and authorises, reads through ``rooms.selectors`` or
writes through ``rooms.services``, and renders with ``serializers``. Rooms a
user may not see answer 404, as if they did not exist. Each method declares
every answer it can give (``schema.responses``), so ``/api/schema/`` is exact.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response

from rooms import selectors, services
from rooms.models import Room
from sync.core.views import public_state_of

from .base import ApiView
from .schema import json_body, responses
from .serializers import RoomInputSerializer, RoomSerializer, RoomStateSerializer


class RoomPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "pageSize"
    max_page_size = 200


def _visible_room(request: Request, room_id: str) -> Room:
    room = selectors.room_get_visible(user=request.user, room_id=room_id)
    if room is None:
        raise Http404("No such room.")
    return room


class RoomListCreateApi(ApiView):
    permission_classes = [IsAuthenticatedOrReadOnly]
    # Read by drf-spectacular too: the 200 is the paginated object, `page`/`pageSize` are declared.
    pagination_class = RoomPagination

    @extend_schema(
        operation_id="rooms_list",
        responses=responses(
            {200: RoomSerializer(many=True)},
            401,
            (404, "No such page: `page` is not 1 to the last page."),
        ),
        summary="Rooms this user may see, newest first",
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.rooms_visible_to(request.user), request, view=self
        )
        rooms = selectors.room_infos(page or [])
        return paginator.get_paginated_response(RoomSerializer(rooms, many=True).data)

    @extend_schema(
        operation_id="rooms_create",
        request=json_body(RoomInputSerializer),
        responses=responses({201: RoomSerializer}, 400, 401, 403, invalid=RoomInputSerializer),
        summary="Create a room owned by the caller",
    )
    def post(self, request: Request) -> Response:
        data = RoomInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        room = services.room_create(
            by=request.user,
            room_id=values["roomId"],
            name=values["name"],
            room_type=values["roomType"],
            visibility=values["visibility"],
            max_players=values["maxPlayers"],
        )
        body = RoomSerializer(selectors.room_info(room)).data
        return Response(body, status=status.HTTP_201_CREATED)


class RoomDetailApi(ApiView):
    @extend_schema(
        operation_id="rooms_retrieve",
        responses=responses({200: RoomSerializer}, 401, 404),
        summary="A room",
    )
    def get(self, request: Request, roomId: str) -> Response:
        room = _visible_room(request, roomId)
        return Response(RoomSerializer(selectors.room_info(room)).data)

    @extend_schema(
        operation_id="rooms_close",
        responses=responses({204: OpenApiResponse(description="Closed")}, 401, 403, 404),
        summary="Close a room (owner or staff)",
        description="Members get PLAYER_LEFT `closed`, then ERROR `ROOM_CLOSED` on their "
        "next room message. The room is gone from the API afterwards.",
    )
    def delete(self, request: Request, roomId: str) -> Response:
        room = _visible_room(request, roomId)
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        if not selectors.user_may_close(user=request.user, room=room):
            raise PermissionDenied("Only the room's owner or staff may close it.")
        services.room_close(room=room, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomStateApi(ApiView):
    @extend_schema(
        operation_id="rooms_state",
        responses=responses({200: RoomStateSerializer}, 401, 403, 404),
        summary="The live state of a room (who may join it)",
        description="403 when the caller may see the room but not join it "
        "(401 when anonymous).",
    )
    def get(self, request: Request, roomId: str) -> Response:
        room = _visible_room(request, roomId)
        if not selectors.user_may_join(user=request.user, room=room):
            if not request.user.is_authenticated:
                raise NotAuthenticated()
            raise PermissionDenied("You may not join this room.")
        found = selectors.room_state_or_snapshot(room)
        # §13: never private fields, for anyone (staff see them in the admin)
        shown = replace(found, state=public_state_of(room.room_type, found.state))
        return Response(RoomStateSerializer(shown).data)


class NoSuchRoomApi(ApiView):
    """Any other path under ``/api/rooms/`` (a roomId outside the pattern, an empty
    one, an unknown sub-path): a JSON 404 like a room that does not exist, instead
    of the site's HTML page, so clients get the body the schema promises."""

    schema = None  # not an operation: left out of /api/schema/

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication first, as everywhere
        raise Http404("No such room.")
