"""The schema's conventions, in-process: what every operation must declare (issue #18).

The live fuzzing (test_openapi_conformance.py) finds an answer the schema
does not declare; these checks hold each operation, including the ones still
to come, to the conventions of docs/http-api.md without waiting for the
fuzzer to stumble on the case: refusals carry the error body, a ``{roomId}``
path may answer 404, authenticated operations may answer 401, bodies are JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    answer = Client().get("/api/schema/?format=json")
    assert answer.status_code == 200
    return answer.json()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items() if method in METHODS
    ]
    assert len(found) >= 6, found
    return found


def resolve(schema: dict[str, Any], ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    ref = ref_or_schema.get("$ref")
    if ref is None:
        return ref_or_schema
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_the_schema_generates_without_a_warning(tmp_path: Path) -> None:
    """drf-spectacular's own validation; a guessed type or a missing serializer warns."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))
    assert (tmp_path / "s.yaml").stat().st_size > 0


def test_every_refusal_has_the_error_body(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        for code, response in operation["responses"].items():
            if not code.startswith("4"):
                continue
            content = response.get("content", {})
            assert set(content) == {"application/json"}, (method, path, code)
            body = resolve(schema, content["application/json"]["schema"])
            assert body["properties"]["detail"]["type"] == "string", (method, path, code)
            assert "detail" in body["required"], (method, path, code)


def test_every_operation_declares_the_refusals_its_path_and_security_allow(
    schema: dict[str, Any],
) -> None:
    for method, path, operation in operations(schema):
        declared = set(operation["responses"])
        if "{roomId}" in path:
            assert "404" in declared, (method, path)
        if any(requirement for requirement in operation.get("security", [{}])):
            assert "401" in declared, (method, path)  # a wrong token is refused everywhere
        if "requestBody" in operation:
            assert set(operation["requestBody"]["content"]) == {"application/json"}, (method, path)
            assert "400" in declared, (method, path)


def test_the_list_is_paginated(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/rooms/"]["get"]
    body = resolve(schema, operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(body["properties"]) == {"count", "next", "previous", "results"}
    assert body["properties"]["results"]["items"] == {"$ref": "#/components/schemas/Room"}
    assert {p["name"] for p in operation["parameters"]} == {"page", "pageSize"}


def test_the_schema_itself_is_not_an_operation(schema: dict[str, Any]) -> None:
    assert "/api/schema/" not in schema["paths"]


@pytest.mark.parametrize(
    "path", ["/api/rooms/%C2%84/", "/api/rooms//", "/api/rooms/a/b/", "/api/rooms/x/nothing/",
             "/api/rooms/a%0Ab/state/", "/api/rooms/" + "x" * 65 + "/"],
)
def test_any_other_path_under_rooms_is_a_json_404(path: str) -> None:
    answer = Client().get(path)
    assert answer.status_code == 404
    assert answer["Content-Type"] == "application/json"
    assert answer.json() == {"detail": "No such room."}


def test_a_missing_slash_still_redirects() -> None:
    answer = Client().get("/api/rooms/lobby")
    assert answer.status_code == 301 and answer["Location"] == "/api/rooms/lobby/"
