from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = _("Labeling")

    def ready(self) -> None:
        from core.jobs import JobKind, job_kind_register
        from labeling import receivers  # noqa: F401  (connects the signal handlers)
        from labeling.models import ReclassificationJob
        from labeling.services.reclassification import reclassification_job_enqueue

        job_kind_register(JobKind(model=ReclassificationJob, queue="default", enqueue=reclassification_job_enqueue))
