"""The retraining policy: when a training run starts by itself. One row, edited by admins on the dashboard; one
beat task (and a check after each settled label) applies it. Replaces the env-only LABELING_RETRAIN_EVERY, which
is now only the count's default."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from catalog.models import CategoryChange, CategorySource
from core.errors import ApplicationError
from mlcore.models import ModelVersion, RetrainingPolicy, TrainingMethod, TrainingRun

logger = logging.getLogger(__name__)

# The labeling workflow's labels: annotators' settled answers and reviewers' decisions. Not `manual`: the demo's
# 200 seed labels are manual, and counting them started a run by itself on a fresh `make demo` (tried).
LABEL_SOURCES = (CategorySource.ANNOTATION,)


def retraining_policy_get() -> RetrainingPolicy:
    policy, _ = RetrainingPolicy.objects.get_or_create(
        pk=1, defaults={"after_labels": max(0, int(settings.LABELING_RETRAIN_EVERY))}
    )
    return policy


def retraining_policy_update(
    *, user: User, after_labels: int, daily_at: time | None, min_interval_minutes: int
) -> RetrainingPolicy:
    if after_labels < 0 or min_interval_minutes < 0:
        raise ApplicationError("The label count and the minimum interval cannot be negative.")
    policy = retraining_policy_get()
    policy.after_labels, policy.daily_at, policy.min_interval_minutes = after_labels, daily_at, min_interval_minutes
    policy.updated_by = user
    policy.save()
    return policy


def new_labels_since_last_run() -> int:
    last = TrainingRun.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    labels = CategoryChange.objects.filter(source__in=LABEL_SOURCES, verified=True)
    return (labels.filter(created_at__gt=last) if last is not None else labels).count()


def retraining_due(*, now: datetime | None = None) -> str | None:
    """Why a run should start now (None: it should not): enough new labels, or the daily time passed since the last
    run; never within the minimum interval of the last run."""
    now = now or timezone.now()
    policy = retraining_policy_get()
    last = TrainingRun.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    if last is not None and now - last < timedelta(minutes=policy.min_interval_minutes):
        return None
    if policy.after_labels:
        count = new_labels_since_last_run()
        if count >= policy.after_labels:
            return f"{count} new verified labels (policy: every {policy.after_labels})"
    if policy.daily_at is not None:
        local = timezone.localtime(now)
        today_at = timezone.make_aware(datetime.combine(local.date(), policy.daily_at), local.tzinfo)
        if now >= today_at and (last is None or last < today_at):
            return f"the daily run at {policy.daily_at.strftime('%H:%M')}"
    return None


def new_labels_since_last_fast_version() -> int:
    last = (
        ModelVersion.objects.filter(method=TrainingMethod.FAST)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    labels = CategoryChange.objects.filter(source__in=LABEL_SOURCES, verified=True)
    return (labels.filter(created_at__gt=last) if last is not None else labels).count()


def fast_head_check(*, fit_now: bool = False) -> ModelVersion | None:
    """Every MLCORE_FAST_HEAD_EVERY new verified labels from the labeling workflow, a fast head: queued on the
    `scoring` queue (at most once per half minute), or fitted here when `fit_now` (the task)."""
    every = settings.MLCORE_FAST_HEAD_EVERY
    if not every or new_labels_since_last_fast_version() < every:
        return None
    if not fit_now:
        if cache.add(FAST_SCHEDULED_KEY, 1, timeout=30):
            transaction.on_commit(_fast_version_enqueue)
        return None
    from mlcore.services.training import fast_version_fit

    try:
        return fast_version_fit(user=None)
    except ApplicationError as exc:
        logger.info("fast head due but not fitted: %s", exc.message)
        return None


FAST_SCHEDULED_KEY = "mlcore:fast-head-scheduled"


def _fast_version_enqueue() -> None:
    from mlcore.tasks import fast_version_task

    try:
        fast_version_task.delay()
    except Exception:  # the broker is down: beat's minute check queues it again
        logger.warning("could not queue a fast head", exc_info=True)


def retraining_check(*, now: datetime | None = None) -> TrainingRun | None:
    """Start a run when the policy says so (refused quietly when one runs or labels are too few); queue a fast head
    when enough labels came in since the last one."""
    from mlcore.services.training import training_run_start

    fast_head_check()

    reason = retraining_due(now=now)
    if reason is None:
        return None
    try:
        run = training_run_start(user=None)
    except ApplicationError as exc:
        logger.info("retraining due (%s) but not started: %s", reason, exc.message)
        return None
    logger.info("retraining run #%s started: %s", run.pk, reason)
    return run


def fast_version_request() -> None:
    """An admin's "fit a fast head now": checked here (enough labels, a broker), fitted on the `scoring` queue."""
    from core.broker import broker_check
    from mlcore.services.datasets import label_counts
    from mlcore.services.training import MIN_LABELS_PER_CATEGORY
    from mlcore.tasks import fast_version_task

    usable = [n for n in label_counts().values() if n >= MIN_LABELS_PER_CATEGORY]
    if len(usable) < 2:
        raise ApplicationError(
            f"A fast head needs verified labels in at least 2 categories ({MIN_LABELS_PER_CATEGORY} each); "
            f"there are {len(usable)}."
        )
    broker_check()
    transaction.on_commit(lambda: fast_version_task.delay(on_demand=True))
