from __future__ import annotations

from config.tasks import durable_task


@durable_task()
def import_job_run_task(self: object, job_id: int) -> None:
    from catalog.services.jobs import import_job_run

    import_job_run(job_id=job_id)
