"""Label audits: find likely errors among the verified labels (confident learning) and announce them.

The audit reads every verified product and lets mlcore/engine/label_audit.py judge each label by a model that
never saw it (cross-validated, on n-grams of the product text). Findings are stored as LabelIssue rows and announced
with the `label_issues_found` signal; the labeling app routes them to review. Nothing here changes a label.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Product
from config.errors import NotFoundError
from mlcore.models import LabelAudit, LabelIssue, RunStatus
from mlcore.signals import label_issues_found

logger = logging.getLogger(__name__)

AUDIT_METHOD = "confident learning (cleanlab) on cross-validated logistic regression over text n-grams"


def label_audit_start(*, user: User | None, enqueue: bool = True) -> LabelAudit:
    """Queue an audit of every verified label; while one is queued or running, that one is returned instead.
    Two starts at the same moment (a training run's end and an admin's click) cannot both queue one: the database
    holds at most one queued audit, and the loser gets the winner's."""
    pending = LabelAudit.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).first()
    if pending is not None:
        return pending
    try:
        with transaction.atomic():
            audit = LabelAudit.objects.create(created_by=user, method=AUDIT_METHOD)
            if enqueue:
                from mlcore.tasks import label_audit_task

                transaction.on_commit(lambda: label_audit_task.delay(audit.pk))
    except IntegrityError:
        # The winner may already have been picked up by a worker: queued or running, it is the one.
        return LabelAudit.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).earliest("pk")
    return audit


def label_audit_execute(*, audit_id: int) -> LabelAudit:
    """Run the audit here. A redelivered task (killed worker) starts it over: the findings are written in one
    transaction with the final status, so a half-finished audit leaves nothing behind."""
    with transaction.atomic():
        audit = LabelAudit.objects.select_for_update().filter(pk=audit_id).first()
        if audit is None:
            raise NotFoundError(f"No label audit with id {audit_id}.")
        if audit.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return audit
        audit.status, audit.started_at = RunStatus.RUNNING, timezone.now()
        audit.save(update_fields=["status", "started_at"])
    try:
        _execute(audit)
    except Exception as exc:
        logger.exception("label audit %s failed", audit.pk)
        LabelAudit.objects.filter(pk=audit.pk).update(
            status=RunStatus.FAILED, error=f"{exc.__class__.__name__}: {exc}", finished_at=timezone.now()
        )
        raise
    audit.refresh_from_db()
    label_issues_found.send(sender=LabelAudit, audit=audit)
    return audit


def _execute(audit: LabelAudit) -> None:
    from mlcore.engine.label_audit import audit_texts
    from mlcore.engine.text import product_text
    from mlcore.engine.types import ProductText

    verified = list(
        Product.objects.filter(is_verified=True, category__isnull=False)
        .values_list("id", "title", "brand", "description", "category_id")
        .order_by("id")
    )
    texts = [product_text(ProductText(title=t, brand=b, description=d)) for _, t, b, d, _ in verified]
    labels = [str(category_id) for *_, category_id in verified]
    result = audit_texts(texts, labels, folds=settings.MLCORE_LABEL_AUDIT_FOLDS)
    issues = [
        LabelIssue(
            audit=audit,
            product_id=verified[issue.index][0],
            given_category_id=int(issue.given),
            suggested_category_id=int(issue.suggested),
            given_probability=issue.given_probability,
            suggested_probability=issue.suggested_probability,
        )
        for issue in result.issues
    ]
    with transaction.atomic():
        LabelIssue.objects.filter(audit=audit).delete()
        LabelIssue.objects.bulk_create(issues, batch_size=1000)
        LabelAudit.objects.filter(pk=audit.pk).update(
            status=RunStatus.SUCCEEDED,
            labels_checked=result.checked,
            labels_skipped=result.skipped,
            issues_found=len(issues),
            agreement=result.agreement if result.checked else None,
            finished_at=timezone.now(),
            error="",
        )
