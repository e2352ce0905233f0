from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from core.broker import BrokerUnavailableError, broker_check

logger = logging.getLogger(__name__)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers and the broker accepts a connection; 503 with what failed otherwise."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        logger.warning("healthz: database: %s", exc)
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        broker_check()
        checks["broker"] = "ok"
    except BrokerUnavailableError as exc:
        logger.warning("healthz: broker: %s", exc.__cause__)
        checks["broker"] = f"error: {exc.__cause__.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)
