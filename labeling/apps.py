from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = _("Labeling")

    def ready(self) -> None:
        from labeling import receivers  # noqa: F401  (connects the signal handlers)
