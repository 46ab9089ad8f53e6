"""``/api/schema/`` holds for every answer of a live server (issue #18).

schemathesis (an OpenAPI fuzzer, pinned in requirements-dev.txt) reads the
schema from a real daphne and calls every operation in it, with valid and
invalid data, as anonymous, as a plain user and as staff. Every answer must
be a declared status code with a declared content type and a body matching
its schema, and none may be a 5xx. A new endpoint is fuzzed as soon as it is
in the schema; nothing here lists operations, except to check that the runs
reached the answers that matter (a run refused at the door proves little).

The CLI runs in a subprocess (its stable interface), with a fixed seed, a
bounded number of examples and one worker, in a temporary directory so its
files stay out of the repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.livehttp import HttpClient, LiveUser, create_users

pytestmark = pytest.mark.timeout(120)

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
])
SEEDS = {"anonymous": 18, "user": 19, "staff": 20}  # one each: the same seed would repeat roomIds
MAX_EXAMPLES = "5"  # per operation and phase; the coverage phase adds its boundary cases

# (method, path template, status) the run must have seen, by caller: the answers
# behind the door, not only the refusals at it.
REACHED = {
    "anonymous": {
        ("GET", "/api/rooms/", 200), ("GET", "/api/rooms/", 404),
        ("GET", "/api/rooms/{roomId}/", 200), ("GET", "/api/rooms/{roomId}/", 404),
        ("GET", "/api/rooms/{roomId}/state/", 200), ("GET", "/api/rooms/{roomId}/state/", 404),
        ("DELETE", "/api/rooms/{roomId}/", 401), ("POST", "/api/rooms/", 401),
        ("POST", "/api/auth/token/", 200), ("POST", "/api/auth/token/", 400),
    },
    "user": {
        ("POST", "/api/rooms/", 201), ("POST", "/api/rooms/", 400),
        ("GET", "/api/rooms/{roomId}/", 200), ("GET", "/api/rooms/{roomId}/state/", 200),
        ("DELETE", "/api/rooms/{roomId}/", 403), ("DELETE", "/api/rooms/{roomId}/", 404),
    },
    "staff": {
        ("POST", "/api/rooms/", 201), ("POST", "/api/rooms/", 400),
        ("GET", "/api/rooms/{roomId}/", 200), ("GET", "/api/rooms/{roomId}/state/", 200),
        ("DELETE", "/api/rooms/{roomId}/", 204), ("DELETE", "/api/rooms/{roomId}/", 404),
    },
}


@pytest.fixture(scope="module")
def live_users(live_database_url: str) -> dict[str, LiveUser]:
    tag = os.getpid()
    made = create_users(live_database_url, [
        {"username": f"oas-owner-{tag}", "password": "oas-owner-pw-1"},
        {"username": f"oas-user-{tag}", "password": "oas-user-pw-1"},
        {"username": f"oas-staff-{tag}", "password": "oas-staff-pw-1", "staff": True},
    ])
    return {name.split("-")[1]: user for name, user in made.items()}


def seed_rooms(server: Any, owner: LiveUser, stem: str) -> list[str]:
    """One room of each visibility, owned by ``owner``: ids for the fuzzer to hit."""
    client = HttpClient(server.http_url, token=owner.token)
    made = []
    for visibility in ("public", "login", "private"):
        room_id = f"{stem}-{visibility}"
        answer = client.post("/api/rooms/", json_body={"roomId": room_id, "visibility": visibility})
        assert answer.status == 201, answer.text
        made.append(room_id)
    return made


def config(room_ids: list[str], new_ids: list[str], login: LiveUser) -> str:
    """schemathesis.toml: known room ids, ids free to create and one real login mixed
    into the generated values, so runs reach past 404 and 400; fewer positive login
    cases (each refused login runs the password hasher, slow on purpose)."""
    def values(items: list[str]) -> str:
        return json.dumps(items)

    return f"""
[generation]
database = "none"

[parameters]
"path.roomId" = {{ dictionary = "rooms", probability = 0.5 }}
"body.roomId" = {{ dictionary = "new_rooms", probability = 0.3 }}
"body.username" = {{ dictionary = "usernames", probability = 0.5 }}
"body.password" = {{ dictionary = "passwords", probability = 0.5 }}

[dictionaries.rooms]
values = {values(room_ids)}

[dictionaries.new_rooms]
values = {values(new_ids)}

[dictionaries.usernames]
values = {values([login.username])}

[dictionaries.passwords]
values = {values([login.password])}

[[operations]]
include-name = "POST /api/auth/token/"
phases.coverage.generation.mode = "negative"
"""


def run_schemathesis(
    location: str, workdir: Path, *, toml: str = "", token: str | None = None, seed: int = 18,
    extra: list[str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], set[tuple[str, str, int]]]:
    """One CLI run; its result and the (method, path template, status) it saw."""
    config_file = workdir / "schemathesis.toml"
    config_file.write_text(toml)
    report = workdir / "report"
    command = [
        SCHEMATHESIS, "--no-color", "--config-file", str(config_file), "run", location,
        "--checks", CHECKS, "--seed", str(seed), "--max-examples", MAX_EXAMPLES, "--workers", "1",
        "--report", "ndjson", "--report-dir", str(report), *(extra or []),
    ]
    if token:
        command += ["-H", f"Authorization: Token {token}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=100
    )
    return done, seen_answers(report)


def seen_answers(report: Path) -> set[tuple[str, str, int]]:
    seen = set()
    for path in report.glob("*.ndjson"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if "ScenarioFinished" not in event:
                continue
            recorder = event["ScenarioFinished"]["recorder"]
            cases = recorder.get("cases") or {}
            for case_id, interaction in (recorder.get("interactions") or {}).items():
                response = interaction.get("response")
                case = cases.get(case_id, {}).get("value")
                if response and case:
                    seen.add((case["method"], case["path"], response["status_code"]))
    return seen


def failure_report(done: subprocess.CompletedProcess[str]) -> str:
    output = done.stdout + done.stderr
    start = output.find("FAILURES")
    return output[output.rfind("\n", 0, max(start, 0)) + 1:][-12000:]


@pytest.mark.parametrize("caller", ["anonymous", "user", "staff"])
def test_every_answer_is_the_one_the_schema_declares(
    kasagi_server: Any, live_users: dict[str, LiveUser], caller: str, tmp_path: Path,
    room_id: str,
) -> None:
    rooms = seed_rooms(kasagi_server, live_users["owner"], room_id)
    token = None if caller == "anonymous" else live_users[caller].token
    done, seen = run_schemathesis(
        f"{kasagi_server.http_url}/api/schema/?format=json", tmp_path,
        toml=config(rooms, [f"{room_id}-new-{n}" for n in range(3)], live_users["user"]),
        token=token, seed=SEEDS[caller],
    )
    assert done.returncode == 0, failure_report(done)
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", done.stdout)
    assert selected and len(set(selected.groups())) == 1, done.stdout[-3000:]  # all, all tested
    missing = REACHED[caller] - seen
    assert not missing, f"the run never saw {sorted(missing)}; it saw {sorted(seen)}"


def _broken(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as it was before issue #18: a bare array for the list, no 404s."""
    paths = schema["paths"]
    paths["/api/rooms/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {
        "type": "array", "items": {"$ref": "#/components/schemas/Room"},
    }
    del paths["/api/rooms/{roomId}/"]["get"]["responses"]["404"]
    return schema


@pytest.mark.parametrize(
    ("break_schema", "expected"),
    [(_broken, ["ST103 Undocumented status code", "ST108 Response violates schema"])],
)
def test_a_wrong_schema_fails_the_run(
    kasagi_server: Any, tmp_path: Path, break_schema: Callable[[dict], dict],
    expected: list[str],
) -> None:
    """The harness catches what issue #18 found, so a green run above means something."""
    with urllib.request.urlopen(f"{kasagi_server.http_url}/api/schema/?format=json") as answer:
        schema = json.load(answer)
    (tmp_path / "schema.json").write_text(json.dumps(break_schema(schema)))
    done, _ = run_schemathesis(
        str(tmp_path / "schema.json"), tmp_path,
        extra=[
            "--url", kasagi_server.http_url, "--include-path-regex", r"^/api/rooms/(\{roomId\}/)?$",
            "--include-method", "GET", "--phases", "fuzzing",
        ],
    )
    assert done.returncode != 0, done.stdout[-3000:]
    for failure in expected:
        assert failure in done.stdout, done.stdout[-6000:]

