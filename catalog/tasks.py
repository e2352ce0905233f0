from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
)
def import_job_run_task(self: object, job_id: int) -> None:
    from catalog.services.jobs import import_job_run

    import_job_run(job_id=job_id)
