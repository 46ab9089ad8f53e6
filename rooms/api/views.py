"""The rooms REST API (PROTOCOL.md §10): thin views over selectors and services.

Each view authenticates and authorises, reads through ``rooms.selectors`` or
writes through ``rooms.services``, and renders with ``serializers``. Rooms a
user may not see answer 404, as if they did not exist.
"""

from __future__ import annotations

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

from .base import ApiView
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

    @extend_schema(
        operation_id="rooms_list",
        responses=RoomSerializer(many=True),
        summary="Rooms this user may see, newest first",
    )
    def get(self, request: Request) -> Response:
        paginator = RoomPagination()
        page = paginator.paginate_queryset(
            selectors.rooms_visible_to(request.user), request, view=self
        )
        rooms = selectors.room_infos(page or [])
        return paginator.get_paginated_response(RoomSerializer(rooms, many=True).data)

    @extend_schema(
        operation_id="rooms_create",
        request=RoomInputSerializer,
        responses={201: RoomSerializer},
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
    @extend_schema(operation_id="rooms_retrieve", responses=RoomSerializer, summary="A room")
    def get(self, request: Request, roomId: str) -> Response:
        room = _visible_room(request, roomId)
        return Response(RoomSerializer(selectors.room_info(room)).data)

    @extend_schema(
        operation_id="rooms_close",
        responses={204: OpenApiResponse(description="Closed")},
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
        responses=RoomStateSerializer,
        summary="The live state of a room (who may join it)",
    )
    def get(self, request: Request, roomId: str) -> Response:
        room = _visible_room(request, roomId)
        if not selectors.user_may_join(user=request.user, room=room):
            if not request.user.is_authenticated:
                raise NotAuthenticated()
            raise PermissionDenied("You may not join this room.")
        return Response(RoomStateSerializer(selectors.room_state_or_snapshot(room)).data)
