"""Celery tasks of the `training` and `scoring` queues: ids in, one service call each (torch is imported inside the
services). Soft time limits fail the job with that cause; the hard limit kills the child, and the job's claim rule
takes it from there (core/jobs.py)."""

from __future__ import annotations

import contextlib

from django.conf import settings

from core.tasks import durable_task

_LIMITS = settings.JOBS_TIME_LIMITS
_GRACE = settings.JOBS_HARD_LIMIT_GRACE


@durable_task(soft_time_limit=_LIMITS["training"], time_limit=_LIMITS["training"] + _GRACE)
def training_run_task(self: object, run_id: int) -> None:
    from mlcore.services.training import training_run_execute

    training_run_execute(run_id=run_id)


@durable_task(soft_time_limit=_LIMITS["scoring"], time_limit=_LIMITS["scoring"] + _GRACE)
def rescore_chunk_task(self: object, job_id: int, first_id: int, last_id: int) -> None:
    from mlcore.services.rescoring import rescore_chunk

    rescore_chunk(job_id=job_id, first_id=first_id, last_id=last_id)


@durable_task(soft_time_limit=_LIMITS["label_audit"], time_limit=_LIMITS["label_audit"] + _GRACE)
def label_audit_task(self: object, audit_id: int) -> None:
    from mlcore.services.label_audit import label_audit_execute

    label_audit_execute(audit_id=audit_id)


@durable_task(soft_time_limit=_LIMITS["scoring"], time_limit=_LIMITS["scoring"] + _GRACE)
def scoring_backlog_task(self: object) -> None:
    """Products created or edited since the last full re-score (idempotent: the backlog rows are the state)."""
    from mlcore.services.scoring import scoring_backlog_drain

    scoring_backlog_drain()


@durable_task(soft_time_limit=60, time_limit=120)
def retraining_check_task(self: object) -> None:
    """The retraining policy's beat: starts a run when it is due."""
    from mlcore.services.policy import retraining_check

    retraining_check()


@durable_task(soft_time_limit=_LIMITS["scoring"], time_limit=_LIMITS["scoring"] + _GRACE)
def predictions_prune_task(self: object) -> None:
    """Stored predictions of versions no rollback keeps (idempotent: it deletes what is left to delete)."""
    from mlcore.services.registry import predictions_prune

    predictions_prune()


@durable_task(soft_time_limit=_LIMITS["scoring"], time_limit=_LIMITS["scoring"] + _GRACE)
def fast_version_task(self: object, on_demand: bool = False) -> None:
    """A fast head: when labels made one due (idempotent: a second delivery finds nothing new to fit on), or now
    because an admin asked (a second delivery fits another: harmless, the gate compares it like any)."""
    from core.errors import ApplicationError
    from mlcore.services.policy import fast_head_check
    from mlcore.services.training import fast_version_fit

    if not on_demand:
        fast_head_check(fit_now=True)
        return
    # Too few labels by now (undone meanwhile): the page that asked checked them, nothing to fit.
    with contextlib.suppress(ApplicationError):
        fast_version_fit(user=None)
