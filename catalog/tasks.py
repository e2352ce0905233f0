from __future__ import annotations

from django.conf import settings

from core.tasks import durable_task

_LIMIT = settings.JOBS_TIME_LIMITS["import"]


@durable_task(soft_time_limit=_LIMIT, time_limit=_LIMIT + settings.JOBS_HARD_LIMIT_GRACE)
def import_job_run_task(self: object, job_id: int) -> None:
    from catalog.services.jobs import import_job_run

    import_job_run(job_id=job_id)
