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
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response

from rooms import history, selectors, services
from rooms.models import Room
from sync.core.changes import Source
from sync.core.views import public_state_of

from .base import ApiView
from .schema import json_body, responses
from .serializers import (
    HistoryPageSerializer,
    HistoryQuerySerializer,
    RestoreInputSerializer,
    RestoreSerializer,
    RoomInputSerializer,
    RoomSerializer,
    RoomStateSerializer,
    StateQuerySerializer,
)


class RoomPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "pageSize"
    max_page_size = 200


def _visible_room(request: Request, room_id: str) -> Room:
    room = selectors.room_get_visible(user=request.user, room_id=room_id)
    if room is None:
        raise Http404("No such room.")
    return room


def _joinable_room(request: Request, room_id: str) -> Room:
    """A room the caller may join (§7): 404 when it may not see it, else 401/403."""
    room = _visible_room(request, room_id)
    if not selectors.user_may_join(user=request.user, room=room):
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        raise PermissionDenied("You may not join this room.")
    return room


def _query(request: Request, serializer: type[serializers.Serializer]) -> dict[str, Any]:
    data = serializer(data=request.query_params)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


def _is_staff(request: Request) -> bool:
    return bool(request.user.is_authenticated and request.user.is_staff)


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
        services.room_close(room=room, by=request.user, source=Source.API)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomStateApi(ApiView):
    @extend_schema(
        operation_id="rooms_state",
        parameters=[StateQuerySerializer],
        responses=responses(
            {200: RoomStateSerializer}, 400, 401, 403,
            (404, "Not found, not visible to this user, or `version` outside the kept "
             "history (§15)."),
            invalid=StateQuerySerializer),
        summary="The state of a room (who may join it), live or at a version",
        description="403 when the caller may see the room but not join it "
        "(401 when anonymous). With `version`: the state right after that version, "
        "from the nearest snapshot and the recorded changes; private fields only for "
        "staff. Without it: the live state, never with private fields.",
    )
    def get(self, request: Request, roomId: str) -> Response:
        room = _joinable_room(request, roomId)
        version = _query(request, StateQuerySerializer).get("version")
        if version is not None:
            state = history.room_state_at(room=room, version=version)
            if state is None:
                raise Http404("That version is not in the room's kept history.")
            at = history.shown_state(room, state, private=_is_staff(request))
            return Response({"roomId": room.room_id, "version": version, "state": at})
        found = selectors.room_state_or_snapshot(room)
        # §13: never private fields, for anyone (staff see them in the admin)
        shown = replace(found, state=public_state_of(room.room_type, found.state))
        return Response(RoomStateSerializer(shown).data)


class RoomHistoryApi(ApiView):
    @extend_schema(
        operation_id="rooms_history",
        parameters=[HistoryQuerySerializer],
        responses=responses(
            {200: HistoryPageSerializer}, 400, 401, 403, 404, invalid=HistoryQuerySerializer),
        summary="The room's changes, oldest first (who may join it)",
        description="Each change with its author and the merge patch it made (§15), "
        "from version `after` + 1; `next` is the URL of the next page, null on the last. "
        "Private fields are left out of the patches except for staff.",
    )
    def get(self, request: Request, roomId: str) -> Response:
        room = _joinable_room(request, roomId)
        query = _query(request, HistoryQuerySerializer)
        page = history.history_page(
            room=room, after=query["after"], limit=query["limit"], private=_is_staff(request))
        next_url = None
        if page.next_after is not None:
            next_url = request.build_absolute_uri(
                f"{request.path}?after={page.next_after}&limit={query['limit']}")
        return Response(HistoryPageSerializer({"results": page.records, "next": next_url}).data)


class RoomRestoreApi(ApiView):
    @extend_schema(
        operation_id="rooms_restore",
        request=json_body(RestoreInputSerializer),
        responses=responses(
            {200: RestoreSerializer}, 400, 401,
            (403, "Refused: only the room's owner or staff may restore it."),
            (404, "Not found, not visible to this user, or `version` outside the kept "
             "history."),
            409, 413, invalid=RestoreInputSerializer),
        summary="Set the room back to a version (owner or staff)",
        description="Entities, and the fields of the players present both now and at "
        "`version`, go back to that version as one new change (kind `restore`); nobody "
        "is added or removed. Members get a DELTA_UPDATE.",
    )
    def post(self, request: Request, roomId: str) -> Response:
        room = _visible_room(request, roomId)
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        if not selectors.user_may_close(user=request.user, room=room):
            raise PermissionDenied("Only the room's owner or staff may restore it.")
        data = RestoreInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.room_restore(
            room=room, version=data.validated_data["version"], by=request.user,
            source=Source.API)
        if version is None:
            raise Http404("That version is not in the room's kept history.")
        return Response(RestoreSerializer({"version": version}).data)


class NoSuchRoomApi(ApiView):
    """Any other path under ``/api/rooms/`` (a roomId outside the pattern, an empty
    one, an unknown sub-path): a JSON 404 like a room that does not exist, instead
    of the site's HTML page, so clients get the body the schema promises."""

    schema = None  # not an operation: left out of /api/schema/

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication first, as everywhere
        raise Http404("No such room.")
