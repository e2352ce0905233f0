"""Celery tasks of the `ml` queue: ids in, one service call each (torch is imported inside the services)."""

from __future__ import annotations

from config.tasks import durable_task


@durable_task()
def training_run_task(self: object, run_id: int) -> None:
    from mlcore.services.training import training_run_execute

    training_run_execute(run_id=run_id)


@durable_task()
def rescore_chunk_task(self: object, job_id: int, first_id: int, last_id: int) -> None:
    from mlcore.services.rescoring import rescore_chunk

    rescore_chunk(job_id=job_id, first_id=first_id, last_id=last_id)


@durable_task()
def label_audit_task(self: object, audit_id: int) -> None:
    from mlcore.services.label_audit import label_audit_execute

    label_audit_execute(audit_id=audit_id)
