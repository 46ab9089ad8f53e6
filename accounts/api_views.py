"""``POST /api/auth/token/``: username and password in, a DRF token out (PROTOCOL.md §10).

The ``username`` field is the user model's ``USERNAME_FIELD`` (an email for
many sites' custom user models): Django's ``authenticate`` maps it.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import CharField, Serializer

from rooms.api.base import ApiView
from rooms.api.schema import json_body, responses

from .services import user_token_get_or_create


class TokenSerializer(Serializer):
    token = CharField()


class CredentialsSerializer(AuthTokenSerializer):
    """A username (the user model's ``USERNAME_FIELD``) and its password."""

    # DRF's serializer without its read-only ``token``: in the schema, generated
    # clients would ask the caller for it.
    token = None  # type: ignore[assignment]


class TokenObtainApi(ApiView):
    # No authentication: a stale token header must not refuse a login.
    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        operation_id="auth_token",
        request=json_body(CredentialsSerializer),
        responses=responses({200: TokenSerializer}, 400, invalid=CredentialsSerializer),
        summary="Exchange a username and password for an API token",
        description="Wrong credentials are a 400 (`non_field_errors`), not a 401.",
    )
    def post(self, request: Request) -> Response:
        credentials = CredentialsSerializer(data=request.data, context={"request": request})
        credentials.is_valid(raise_exception=True)
        key = user_token_get_or_create(user=credentials.validated_data["user"])
        return Response({"token": key})
