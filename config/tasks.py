"""The one way this project declares a Celery task (CONVENTIONS.md: safe to run twice, retried only on what can
succeed next time)."""

from __future__ import annotations

from functools import partial

from celery import shared_task
from django.db import OperationalError

# acks_late + reject_on_worker_lost: a task whose worker dies is redelivered, and the services' state checks make
# the second delivery harmless. Only database connection trouble is retried, with backoff, three times.
durable_task = partial(
    shared_task,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
)
