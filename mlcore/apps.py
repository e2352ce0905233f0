from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MlcoreConfig(AppConfig):
    name = "mlcore"
    verbose_name = _("Models")

    def ready(self) -> None:
        # The reaper (core/jobs.py) recovers these kinds; the services import torch only inside their functions.
        from core.jobs import JobKind, job_kind_register
        from mlcore import control, receivers  # noqa: F401  (the listeners; the workers' status command)
        from mlcore.models import LabelAudit, RescoreJob, TrainingRun
        from mlcore.services.label_audit import label_audit_enqueue
        from mlcore.services.rescoring import rescore_job_enqueue, rescore_job_queue
        from mlcore.services.training import training_run_ended, training_run_enqueue

        job_kind_register(
            JobKind(model=TrainingRun, queue="training", enqueue=training_run_enqueue, on_ended=training_run_ended)
        )
        job_kind_register(
            JobKind(
                model=RescoreJob,
                queue="scoring",
                enqueue=lambda pk: rescore_job_enqueue(job_id=pk),
                chunked=True,
                queue_of=lambda job: rescore_job_queue(job_id=job.pk),
            )
        )
        job_kind_register(JobKind(model=LabelAudit, queue="training", enqueue=label_audit_enqueue))
