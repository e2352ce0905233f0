"""The one way this project declares a Celery task (CONVENTIONS.md: safe to run twice, retried only on what can
succeed next time), and the reaper that core runs for every app's jobs."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError


@dataclass(frozen=True)
class Delivery:
    """The message being run: its task id (a redelivery keeps it) and the Celery node running it."""

    task_id: str
    node: str


_DELIVERY: ContextVar[Delivery | None] = ContextVar("delivery", default=None)


def current_delivery() -> Delivery | None:
    """The task delivery this code runs in, or None outside a worker (a command, a test)."""
    return _DELIVERY.get()


class DurableTask(Task):  # type: ignore[misc]
    """Makes the delivery known to the services it calls, so that a job's claim records which worker and which
    message hold it (core/jobs.py reads it to tell a lost worker from a live one)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        token = _DELIVERY.set(Delivery(task_id=request.id or "", node=request.hostname or ""))
        try:
            return super().__call__(*args, **kwargs)
        finally:
            _DELIVERY.reset(token)


# What a retry can cure: the database went away (OperationalError) or the connection it left behind is closed
# (InterfaceError, on the next query in the same task). Services let these through to the task's retry.
RETRYABLE = (OperationalError, InterfaceError)

# acks_late + reject_on_worker_lost: a task whose worker dies is redelivered, and the job's claim (core/jobs.py)
# makes the second delivery harmless; both only on tasks that are safe to run twice, which is every task declared
# this way. Only database connection trouble is retried, with backoff, three times. Time limits are per task.
durable_task = partial(
    shared_task,
    base=DurableTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
)


# Not acks_late: a reaper pass that dies is simply the next one, a minute later.
@shared_task(ignore_result=True, soft_time_limit=240, time_limit=300)
def jobs_reap_task() -> dict[str, list[str]]:
    from core.jobs import jobs_reap

    report = jobs_reap()
    return {"resent": report.resent, "failed": report.failed, "cancelled": report.cancelled}
