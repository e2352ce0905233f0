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

from catalog.models import Product
from core.broker import broker_check
from core.jobs import JobCancelled, JobLost, JobRun, describe_failure, job_cancel, job_claim, job_enqueue_on_commit
from core.models import UNFINISHED, JobStatus
from core.tasks import RETRYABLE
from mlcore.models import LabelAudit, LabelIssue
from mlcore.signals import label_issues_found

logger = logging.getLogger(__name__)

AUDIT_METHOD = "confident learning (cleanlab) on cross-validated logistic regression over text n-grams"


def label_audit_start(*, user: User | None, enqueue: bool = True) -> LabelAudit:
    """Queue an audit of every verified label; while one is queued or running, that one is returned instead.
    Two starts at the same moment (a training run's end and an admin's click) cannot both queue one: the database
    holds at most one queued audit, and the loser gets the winner's."""
    pending = LabelAudit.objects.filter(status__in=UNFINISHED).first()
    if pending is not None:
        return pending
    if enqueue:
        broker_check()  # before anything is recorded: a clear 503 instead of a check that never starts
    try:
        with transaction.atomic():
            audit = LabelAudit.objects.create(created_by=user, method=AUDIT_METHOD)
            if enqueue:
                job_enqueue_on_commit(audit, lambda: label_audit_enqueue(audit.pk))
    except IntegrityError:
        # The winner may already have been picked up by a worker: queued or running, it is the one.
        return LabelAudit.objects.filter(status__in=UNFINISHED).earliest("pk")
    return audit


def label_audit_enqueue(audit_id: int) -> None:
    from mlcore.tasks import label_audit_task

    label_audit_task.delay(audit_id)


def label_audit_cancel(*, audit_id: int) -> LabelAudit:
    return job_cancel(LabelAudit, audit_id)


def label_audit_execute(*, audit_id: int) -> LabelAudit | None:
    """Run the audit here. One whose worker was lost starts over on the next delivery: the findings, the final status
    and the review items they open are written in one transaction, so a half-finished audit leaves nothing behind."""
    run = job_claim(LabelAudit, audit_id)
    if run is None:
        return LabelAudit.objects.filter(pk=audit_id).first()
    audit = run.job
    assert isinstance(audit, LabelAudit)
    try:
        with run.keepalive():
            _execute(run, audit)
    except JobLost:
        logger.warning("label audit %s was taken over by another worker; this one stops", audit_id)
        return None
    except JobCancelled:
        run.finish(JobStatus.CANCELLED, error="Cancelled.")
        return LabelAudit.objects.get(pk=audit_id)
    except RETRYABLE:
        raise
    except Exception as exc:
        logger.exception("label audit %s failed", audit.pk)
        run.finish(JobStatus.FAILED, error=describe_failure(exc, what="The label check"))
        raise
    audit.refresh_from_db()
    return audit


def _execute(run: JobRun, audit: LabelAudit) -> None:
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
    run.beat(force=True)  # cancelled or taken over while it computed: write nothing
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
        if not run.finish(
            JobStatus.SUCCEEDED,
            labels_checked=result.checked,
            labels_skipped=result.skipped,
            issues_found=len(issues),
            agreement=result.agreement if result.checked else None,
        ):
            raise JobLost(f"label audit {audit.pk} was taken over before it finished")
        LabelIssue.objects.filter(audit=audit).delete()
        LabelIssue.objects.bulk_create(issues, batch_size=1000)
        # With the findings: the review items they open commit together with them.
        label_issues_found.send(sender=LabelAudit, audit=audit)
