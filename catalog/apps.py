from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = _("Catalog")

    def ready(self) -> None:
        from catalog.models import ImportJob
        from catalog.services.jobs import import_job_enqueue
        from core.jobs import JobKind, job_kind_register

        job_kind_register(JobKind(model=ImportJob, queue="default", enqueue=import_job_enqueue))
