"""Celery tasks of the labeling app (the `default` queue: database work only)."""

from __future__ import annotations

from core.tasks import durable_task


@durable_task(soft_time_limit=3600, time_limit=3720)
def reclassification_job_task(self: object, job_id: int) -> None:
    from labeling.services.reclassification import reclassification_job_run

    reclassification_job_run(job_id=job_id)
