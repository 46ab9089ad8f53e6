"""``/healthz`` and ``/metrics`` in-process (PROTOCOL.md §10)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client

import sync.http

pytestmark = pytest.mark.django_db


def test_healthz_ok_without_redis(settings: Any) -> None:
    settings.KASAGI = {**settings.KASAGI, "redis_url": None}
    answer = Client().get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "database": "ok", "redis": "not configured"}
    assert "no-cache" in answer["Cache-Control"]


def test_healthz_503_when_redis_does_not_answer(settings: Any) -> None:
    settings.KASAGI = {**settings.KASAGI, "redis_url": "redis://127.0.0.1:1/9"}
    answer = Client().get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "error" and body["database"] == "ok"
    assert body["redis"].startswith("error")


def test_healthz_503_when_the_database_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def cursor(self) -> Any:
            raise OperationalError("database is down")

    monkeypatch.setattr(sync.http, "connection", Broken())
    answer = Client().get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["database"] == "error: OperationalError"


def test_healthz_is_get_only() -> None:
    assert Client().post("/healthz").status_code == 405


def test_metrics_for_local_clients() -> None:
    answer = Client().get("/metrics")  # the test client's REMOTE_ADDR is 127.0.0.1
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")
    text = answer.content.decode()
    for name in ("kasagi_connections", "kasagi_rooms", "kasagi_players", "kasagi_frames_out",
                 "kasagi_bytes_out", "kasagi_messages_in", "kasagi_errors",
                 "kasagi_tick_seconds", "kasagi_persistence_queue_depth",
                 "kasagi_persistence_write_seconds"):
        assert name in text, name


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
        ("10.1.2.3", False), ("192.168.0.5", False), ("2001:db8::1", False), ("", False),
        ("not-an-ip", False),
    ],
)
def test_metrics_only_for_allowed_networks(address: str, allowed: bool) -> None:
    answer = Client(REMOTE_ADDR=address).get("/metrics")
    assert answer.status_code == (200 if allowed else 403)


def test_forwarded_headers_do_not_open_metrics() -> None:
    answer = Client(REMOTE_ADDR="10.1.2.3").get(
        "/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1", HTTP_X_REAL_IP="127.0.0.1"
    )
    assert answer.status_code == 403


def test_metrics_networks_come_from_settings(settings: Any) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
