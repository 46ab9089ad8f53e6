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

from .services import user_token_get_or_create


class TokenSerializer(Serializer):
    token = CharField()


class TokenObtainApi(ApiView):
    # No authentication: a stale token header must not refuse a login.
    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        operation_id="auth_token",
        request=AuthTokenSerializer,
        responses=TokenSerializer,
        summary="Exchange a username and password for an API token",
    )
    def post(self, request: Request) -> Response:
        credentials = AuthTokenSerializer(data=request.data, context={"request": request})
        credentials.is_valid(raise_exception=True)
        key = user_token_get_or_create(user=credentials.validated_data["user"])
        return Response({"token": key})
