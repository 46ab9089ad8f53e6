"""Operations endpoints: ``/healthz`` and ``/metrics`` (PROTOCOL.md §10).

``/healthz`` answers 200 when the database and, if configured, Redis answer,
and 503 naming the one that failed. ``/metrics`` serves this process's
Prometheus text (``sync.metrics`` and prometheus-client's own collectors)
to clients on ``settings.METRICS_ALLOWED_NETWORKS`` only. The client address
is ``REMOTE_ADDR``, never a forwarded header: behind a proxy, let the
server set the address (daphne's ``--proxy-headers``) or allow the proxy.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from .conf import kasagi_settings

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 2.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "redis": _check_redis()}
    healthy = all(result in ("ok", "not configured") for result in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not client_allowed(request.META.get("REMOTE_ADDR", "")):
        return HttpResponseForbidden("metrics are served to allowed networks only\n")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def client_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _allowed_networks())


def _allowed_networks() -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(cidr, strict=False)
        for cidr in getattr(settings, "METRICS_ALLOWED_NETWORKS", ())
    )


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.warning("health check: database failed: %s", exc)
        return f"error: {type(exc).__name__}"
    return "ok"


def _check_redis() -> str:
    url = kasagi_settings().redis_url
    if not url:
        return "not configured"
    import redis

    client = redis.Redis.from_url(
        url, socket_timeout=HEALTH_TIMEOUT_SECONDS, socket_connect_timeout=HEALTH_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except Exception as exc:
        logger.warning("health check: redis failed: %s", exc)
        return f"error: {type(exc).__name__}"
    finally:
        client.close()
    return "ok"
