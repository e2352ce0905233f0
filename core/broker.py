"""Is the broker there? Asked before a job is recorded, so that a user whose start cannot be queued gets a clear
503 and nothing is left behind as "queued" forever."""

from __future__ import annotations

from django.conf import settings

from core.errors import ApplicationError


class BrokerUnavailableError(ApplicationError):
    status_code = 503

    def __init__(self, message: str) -> None:
        super().__init__(message, code="broker_unavailable")


def broker_check() -> None:
    """Open a fresh connection (not the pool's: it must see the broker as it is now) or raise."""
    from kombu.connection import Connection

    try:
        with Connection(
            settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS, connect_timeout=2
        ) as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        raise BrokerUnavailableError(
            f"The task queue (Celery broker) does not answer ({exc.__class__.__name__}), so the job cannot be "
            "started; nothing was recorded. Try again when the broker is back; /healthz says when it is."
        ) from exc
