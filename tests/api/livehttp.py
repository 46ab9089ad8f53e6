"""Plain HTTP against live servers, and users in their database.

Blocking on purpose (urllib, one cookie jar per client): async tests call it
through ``asyncio.to_thread``. Users are made by ``manage.py shell`` on the
live database, the way an operator would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from typing import Any

from tests.live import ROOT, server_env

USER_SCRIPT = """
import json, sys
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
User = get_user_model()
out = {}
for spec in json.loads(sys.argv[-1]):
    fields = {User.USERNAME_FIELD: spec["username"], **spec.get("extra", {})}
    user = User.objects.filter(**{User.USERNAME_FIELD: spec["username"]}).first()
    if user is None:
        user = User(**fields)
    user.is_staff = spec.get("staff", False)
    user.is_superuser = spec.get("superuser", False)
    user.set_password(spec["password"])
    user.save()
    out[spec["username"]] = {"pk": user.pk, "token": Token.objects.get_or_create(user=user)[0].key}
print("USERS=" + json.dumps(out, default=str))
"""


@dataclass(frozen=True)
class LiveUser:
    username: str
    password: str
    pk: Any
    token: str


def create_users(
    database_url: str, specs: list[dict[str, Any]], *, settings: str | None = None
) -> dict[str, LiveUser]:
    """Users (``{"username", "password", "staff"?, "superuser"?, "extra"?}``) with tokens."""
    env = server_env(database_url)
    if settings:
        env["DJANGO_SETTINGS_MODULE"] = settings
    done = subprocess.run(
        [sys.executable, "-c", _shell_runner(), json.dumps(specs)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("USERS="))
    made = json.loads(line[len("USERS="):])
    return {
        spec["username"]: LiveUser(
            spec["username"], spec["password"], made[spec["username"]]["pk"],
            made[spec["username"]]["token"],
        )
        for spec in specs
    }


def _shell_runner() -> str:
    return "import django; django.setup()\n" + USER_SCRIPT


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class HttpClient:
    """A browser-ish client: keeps cookies, sends CSRF tokens back, no redirects followed."""

    base_url: str
    token: str | None = None
    jar: CookieJar = field(default_factory=CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def request(
        self, method: str, path: str, *, json_body: Any = None, form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        data = None
        sent = dict(headers or {})
        if self.token:
            sent.setdefault("Authorization", f"Token {self.token}")
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=sent
        )
        try:
            with self.opener.open(request, timeout=15) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Answer:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Answer:
        return self.request("DELETE", path, **kw)

    def csrf(self) -> str:
        for cookie in self.jar:
            if cookie.name == "csrftoken":
                return cookie.value
        raise AssertionError("no csrftoken cookie")

    def post_form(self, path: str, form: dict[str, str]) -> Answer:
        """A form POST the way a browser sends it from a page of this site."""
        return self.post(path, form={"csrfmiddlewaretoken": self.csrf(), **form})

    def login(self, path: str, username: str, password: str, next_url: str = "/") -> None:
        """Log in through a Django login page (``/admin/login/`` or ``/accounts/login/``)."""
        page = self.get(path)
        assert page.status == 200, page.status
        answer = self.post_form(
            path, {"username": username, "password": password, "next": next_url}
        )
        assert answer.status == 302, f"login refused ({answer.status}): {answer.text[:500]}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def admin_room_pk(client: HttpClient, room_id: str) -> str:
    """A room's primary key, found the way an operator would: by searching the admin list."""
    page = client.get(f"/admin/rooms/room/?q={urllib.parse.quote(room_id)}")
    assert page.status == 200, page.status
    found = re.search(r'href="/admin/rooms/room/([^/"]+)/change/[^"]*">' + re.escape(room_id),
                      page.text)
    assert found, f"room {room_id} not in the admin list"
    return found.group(1)
