"""How a Kasagi REST view declares its answers in the OpenAPI schema (``/api/schema/``).

Generated clients trust the schema, so every status code a view can answer
is declared, with its body: the success body from the view's serializer,
and every refusal as an ``{"detail": ...}`` body from ``base.exception_handler``.
``responses(...)`` builds the ``responses=`` of ``extend_schema`` from those
pieces (a view lists the codes it can refuse with, nothing is guessed) and
``json_body(...)`` its ``request=``. The
conformance test (tests/api/test_openapi_conformance.py) runs schemathesis
against a live server to hold every declared operation to this.

Declarations only: nothing here runs on a request.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

#: What each refusal means, for the schema's response descriptions.
REFUSALS = {
    400: "Invalid request: the body, a field or a query parameter is wrong.",
    401: "Not authenticated: no credentials, or an unknown token "
    "(the answer has `WWW-Authenticate: Token`).",
    403: "Refused: this user may not do this (or a session call lacks its CSRF token).",
    404: "Not found, or not visible to this user (private rooms are not disclosed).",
    409: "Conflict with the room's current state (e.g. `ROOM_CLOSED`).",
    413: "Too large for the room's limits (`PAYLOAD_TOO_LARGE`).",
}


class ErrorSerializer(serializers.Serializer):
    """Every refusal: a human-readable ``detail``; ``code`` when the live room refused."""

    detail = serializers.CharField(help_text="What went wrong, for people.")
    code = serializers.CharField(
        required=False,
        help_text="The protocol's error code (PROTOCOL.md §8) when the live room refused, "
        "e.g. `ROOM_CLOSED`; absent otherwise.",
    )


_field_errors: dict[type[serializers.Serializer], type[serializers.Serializer]] = {}


def field_errors(input_serializer: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The 400 body of a view that validates ``input_serializer``: DRF's lists of
    messages by field (and ``non_field_errors``), beside the ``detail`` summary.

    The schema component is named after the input: ``RoomInput`` → ``RoomInputError``.
    """
    if input_serializer not in _field_errors:
        fields: dict[str, Any] = {
            name: serializers.ListField(
                child=serializers.CharField(), required=False,
                help_text=f"Why `{name}` was refused.",
            )
            for name, field in input_serializer().fields.items()
            if not field.read_only
        }
        fields["non_field_errors"] = serializers.ListField(
            child=serializers.CharField(), required=False,
            help_text="Refusals not about one field (a body that is not an object, "
            "wrong credentials...).",
        )
        name = input_serializer.__name__.removesuffix("Serializer") + "ErrorSerializer"
        _field_errors[input_serializer] = type(name, (ErrorSerializer,), {
            **fields,
            "__doc__": "A refused request: ``detail`` sums up the first error; the other "
            "keys list the messages by field.",
            "__module__": __name__,
        })
    return _field_errors[input_serializer]


def json_body(serializer: type[serializers.Serializer]) -> dict[str, Any]:
    """``extend_schema(request=...)``: the body as JSON, the API's format (§10).

    The views also parse form and multipart bodies (``curl -d``), but the schema
    declares one media type: generators build one body type from it (several
    identical ones break some, e.g. openapi-python-client issue #1451).
    """
    return {"application/json": serializer}


def responses(
    success: dict[int, Any],
    *refusals: int | tuple[int, str],
    invalid: type[serializers.Serializer] | None = None,
) -> dict[int, Any]:
    """``extend_schema(responses=...)``: the success answers, then each refusal with
    the error body. A refusal is a status code, or ``(code, description)`` when this
    view's reason differs from ``REFUSALS``; ``invalid`` is the input serializer whose
    field errors make the 400 body (``ErrorSerializer`` otherwise).
    """
    declared: dict[int, Any] = dict(success)
    for refusal in refusals:
        code, description = refusal if isinstance(refusal, tuple) else (refusal, REFUSALS[refusal])
        body = field_errors(invalid) if code == 400 and invalid else ErrorSerializer
        declared[code] = OpenApiResponse(body, description=description)
    return declared
