"""Login and logout pages for the demo (Django's own views, our template)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="ann", password="ann-pw-123")


def test_login_page_renders_a_form() -> None:
    page = Client().get("/accounts/login/?next=/rooms/x/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="username"' in html and 'name="password"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'value="/rooms/x/"' in html


def test_login_then_logout(ann: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    csrf = page.cookies["csrftoken"].value
    answer = client.post("/accounts/login/", {
        "username": "ann", "password": "ann-pw-123", "next": "/rooms/x/",
        "csrfmiddlewaretoken": csrf,
    })
    assert answer.status_code == 302 and answer["Location"] == "/rooms/x/"
    html = client.get("/accounts/login/").content.decode()
    assert "logged in as <strong>ann</strong>" in html
    csrf = client.cookies["csrftoken"].value
    out = client.post("/accounts/logout/", {"csrfmiddlewaretoken": csrf})
    assert out.status_code == 302 and out["Location"] == "/"
    assert "_auth_user_id" not in client.session


def test_wrong_password_shows_an_error(ann: Any) -> None:
    answer = Client().post("/accounts/login/", {"username": "ann", "password": "nope"})
    assert answer.status_code == 200
    assert "Please enter a correct username and password" in answer.content.decode()


def test_logout_is_post_only(ann: Any) -> None:
    client = Client()
    client.force_login(ann)
    assert client.get("/accounts/logout/").status_code == 405
