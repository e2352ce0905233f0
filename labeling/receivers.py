"""Listeners for what mlcore announces (the arrow stays labeling -> mlcore: mlcore sends, labeling listens)."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from mlcore.signals import label_issues_found, predictions_switched

logger = logging.getLogger(__name__)


@receiver(label_issues_found, dispatch_uid="labeling.label_issues_to_review")
def label_issues_to_review(sender: Any, audit: Any, **kwargs: Any) -> None:
    from labeling.services.reviews import review_items_from_label_audit

    opened = review_items_from_label_audit(audit_id=audit.pk)
    logger.info("label audit %s: %s likely label error(s) sent to review", audit.pk, opened)


@receiver(predictions_switched, dispatch_uid="labeling.reclassification_build")
def reclassification_build(sender: Any, version_id: int, **kwargs: Any) -> None:
    from labeling.services.reclassification import reclassification_build_start

    job = reclassification_build_start(version_id=version_id)
    logger.info("v%s serves: reclassification proposals queued (job %s)", version_id, job.pk if job else None)
