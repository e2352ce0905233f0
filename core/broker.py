"""Is the broker there? Asked before a job is recorded, so that a user whose start cannot be queued gets a clear
503 and nothing is left behind as "queued" forever."""

from __future__ import annotations

import logging

from django.conf import settings

from core.errors import ApplicationError

logger = logging.getLogger(__name__)


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


def queue_length(queue: str) -> int | None:
    """Messages waiting in `queue` on the broker (None: it could not be asked)."""
    from celery import current_app

    try:
        with current_app.connection_for_read() as connection:
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            return int(declared.message_count)
    except Exception as exc:
        # A queue no task was ever sent to does not exist yet on some brokers: nothing waits in it.
        if "NOT_FOUND" in str(exc) or "no queue" in str(exc).lower():
            return 0
        logger.warning("could not count the messages in %s: %s", queue, exc)
        return None
