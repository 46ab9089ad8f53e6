"""What every Kasagi REST view shares, set on the views so a host site's
``REST_FRAMEWORK`` settings cannot change the contract (PROTOCOL.md §10):
token and session authentication, per-view permissions, and errors as
``{"detail": ...}``.

Field errors keep DRF's shape (``{"roomId": ["..."]}``) and gain a
``detail`` summary; a Django ``ValidationError`` from a service and a
``ProtocolError`` from the live room become proper HTTP answers.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from sync.core.errors import ErrorCode, ProtocolError

#: HTTP status of a refusal from the live room; anything else is 400.
PROTOCOL_STATUS = {
    ErrorCode.ROOM_NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.NOT_IN_ROOM: status.HTTP_404_NOT_FOUND,
    ErrorCode.ROOM_CLOSED: status.HTTP_409_CONFLICT,
    ErrorCode.VERSION_CONFLICT: status.HTTP_409_CONFLICT,
    ErrorCode.FORBIDDEN: status.HTTP_403_FORBIDDEN,
    ErrorCode.PAYLOAD_TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    ErrorCode.INTERNAL: status.HTTP_500_INTERNAL_SERVER_ERROR,
}

#: Model field names → the API's camelCase names, for errors raised by services.
API_FIELD_NAMES = {
    "room_id": "roomId",
    "room_type": "roomType",
    "max_players": "maxPlayers",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ProtocolError):
        return Response(
            {"detail": exc.message, "code": exc.code.value, **exc.extra},
            status=PROTOCOL_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST),
        )
    if isinstance(exc, DjangoValidationError):
        errors = as_serializer_error(exc)
        exc = exceptions.ValidationError(
            {API_FIELD_NAMES.get(name, name): messages for name, messages in errors.items()}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, list):
        response.data = {"detail": _summary(response.data)}
    elif isinstance(response.data, dict) and "detail" not in response.data:
        response.data = {"detail": _summary(response.data), **response.data}
    return response


def _summary(errors: Any, field: str | None = None) -> str:
    """The first message of a DRF error structure, prefixed with its field."""
    if isinstance(errors, dict):
        for name, value in errors.items():
            if name == "non_field_errors":
                return _summary(value, field)
            return _summary(value, name if field is None else f"{field}.{name}")
        return "invalid request"
    if isinstance(errors, list):
        return _summary(errors[0], field) if errors else "invalid request"
    return f"{field}: {errors}" if field else str(errors)


class ApiView(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    # Each view decides (§10); a host site's stricter default must not hide public rooms.
    permission_classes = [AllowAny]

    def get_exception_handler(self):  # type: ignore[override]
        return exception_handler
