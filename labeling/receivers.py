"""Listeners for what mlcore and catalog announce (the arrows stay labeling -> mlcore -> catalog: they send,
labeling listens)."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from catalog.signals import categories_retired
from mlcore.signals import label_issues_found, predictions_switched

logger = logging.getLogger(__name__)


@receiver(label_issues_found, dispatch_uid="labeling.label_issues_to_review")
def label_issues_to_review(sender: Any, audit: Any, **kwargs: Any) -> None:
    from labeling.services.reviews import review_items_from_label_audit

    opened = review_items_from_label_audit(audit_id=audit.pk)
    logger.info("label audit %s: %s likely label error(s) sent to review", audit.pk, opened)


@receiver(predictions_switched, dispatch_uid="labeling.reclassification_build")
def reclassification_build(sender: Any, version_id: int | None, **kwargs: Any) -> None:
    from labeling.services.reclassification import reclassification_build_start

    job = reclassification_build_start(version_id=version_id)
    logger.info("v%s serves: reclassification proposals queued (job %s)", version_id, job.pk if job else None)


@receiver(categories_retired, dispatch_uid="labeling.reclassification_taxonomy")
def reclassification_taxonomy(
    sender: Any, moves: dict[int, int | None], reason: str, actor: Any, **kwargs: Any
) -> None:
    from labeling.services.reclassification import reclassification_taxonomy_start

    job = reclassification_taxonomy_start(moves=moves, reason=reason, actor=actor)
    logger.info("%s: proposals for the products of %s retired categories queued (job %s)", reason, len(moves), job.pk)
