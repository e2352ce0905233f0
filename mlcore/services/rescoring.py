"""Re-scoring: a prediction for every product from one version (or zero-shot), in id-range chunks on the `scoring` queue
(a fast version's on the `fast` queue, so that it never waits for a long job's chunks).

Each chunk is idempotent (its rows are replaced in one transaction with the chunk's done flag), so a redelivered or
re-run chunk writes nothing twice, and a killed job resumes with the chunks that are not done. Suggestions switch to
the new version only when the last chunk lands.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Product
from core.broker import broker_check
from core.errors import NotFoundError
from core.jobs import (
    describe_failure,
    job_cancel,
    job_end,
    job_enqueue_on_commit,
    lease_claim,
    takeover_reason,
)
from core.models import FINISHED, UNFINISHED, JobStatus
from core.tasks import RETRYABLE
from mlcore.models import (
    ModelVersion,
    Prediction,
    RescoreChunk,
    RescoreJob,
    TrainingMethod,
)
from mlcore.services.scoring import Scores, predictions_write, score_product_range, scoring_backlog_top_up
from mlcore.signals import predictions_switched

logger = logging.getLogger(__name__)


def rescore_job_start(*, version_id: int | None, enqueue: bool = True) -> RescoreJob:
    """Queue a job over the whole catalog; an unfinished job for the same version is resumed, not duplicated.
    enqueue=False leaves the chunks for rescore_job_run_here() (the command's foreground mode)."""
    if enqueue:
        broker_check()  # before anything is recorded: a clear 503 instead of a job that never starts
    version = None
    if version_id is not None:
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise NotFoundError(f"No model version with id {version_id}.")
    with transaction.atomic():
        existing = RescoreJob.objects.filter(model_version=version, status__in=UNFINISHED)
        job = existing.first()
        if job is None:
            job = RescoreJob.objects.create(model_version=version)
            # A fast version scores from stored embeddings (no encoder pass): bigger chunks spread each chunk's fixed
            # cost (lease, queries, commit) over more products and still end in about a second.
            fast = version is not None and version.is_fast
            size = settings.MLCORE_FAST_RESCORE_CHUNK_SIZE if fast else settings.MLCORE_RESCORE_CHUNK_SIZE
            chunks: list[RescoreChunk] = []
            first: int | None = None
            count = last = 0
            for pk in Product.objects.order_by("id").values_list("id", flat=True).iterator(chunk_size=10_000):
                first = pk if first is None else first
                last = pk
                count += 1
                if count % size == 0:
                    chunks.append(RescoreChunk(job=job, first_id=first, last_id=last))
                    first = None
            if first is not None:
                chunks.append(RescoreChunk(job=job, first_id=first, last_id=last))
            RescoreChunk.objects.bulk_create(chunks)
            job.chunks_total, job.products_total = len(chunks), count
            job.save(update_fields=["chunks_total", "products_total"])
        if enqueue:
            job_enqueue_on_commit(job, lambda: rescore_job_enqueue(job_id=job.pk))
    return job


def rescore_job_run_here(*, job_id: int) -> RescoreJob:
    """Run the pending chunks in this process, in order (what the worker would do, for a command or a test)."""
    for first, last in RescoreChunk.objects.filter(job_id=job_id, done=False).values_list("first_id", "last_id"):
        rescore_chunk(job_id=job_id, first_id=first, last_id=last)
    _finish_if_complete(job_id)
    return RescoreJob.objects.get(pk=job_id)


def rescore_job_queue(*, job_id: int) -> str:
    """Where a job's chunks go: a fast version's re-score is what makes the last labels count, so its chunks take
    turns with a long job's on the fast queue instead of queueing behind them (settings: CELERY_TASK_ROUTES)."""
    fast = RescoreJob.objects.filter(pk=job_id, model_version__method=TrainingMethod.FAST).exists()
    return str(settings.MLCORE_FAST_QUEUE) if fast else "scoring"


def rescore_job_enqueue(*, job_id: int) -> int:
    """Send a task for every chunk not done and not held by a live worker (a resume after a lost worker or a lost
    broker sends only those). Returns how many were sent."""
    from mlcore.tasks import rescore_chunk_task

    pending = []
    for chunk in RescoreChunk.objects.filter(job_id=job_id, done=False).order_by("first_id"):
        if chunk.claim_token is not None and takeover_reason(chunk) is None:
            continue  # a live worker is scoring it
        pending.append((chunk.first_id, chunk.last_id))
    queue = rescore_job_queue(job_id=job_id)
    for first, last in pending:
        rescore_chunk_task.apply_async((job_id, first, last), queue=queue)
    if not RescoreChunk.objects.filter(job_id=job_id, done=False).exists():
        _finish_if_complete(job_id)
    return len(pending)


def rescore_job_cancel(*, job_id: int) -> RescoreJob:
    """Ends at once: chunks being scored check the job before they write, and the rest return unread."""
    return job_cancel(RescoreJob, job_id)


class _Stop(Exception):
    """The chunk's job ended (cancelled, failed, superseded) or its lease was taken: write nothing."""


def rescore_chunk(*, job_id: int, first_id: int, last_id: int) -> None:
    """Score one id range and replace its rows, under the chunk's lease: a redelivered twin of a live chunk returns,
    one whose worker is gone takes over, and a chunk that lost its worker JOBS_MAX_ATTEMPTS times fails the job."""
    if not RescoreJob.objects.filter(pk=job_id, status__in=UNFINISHED).exists():
        return
    chunk, why = lease_claim(RescoreChunk.objects.filter(job_id=job_id, first_id=first_id))
    if chunk is None:
        if why == "missing":
            logger.warning("rescore chunk %s/%s does not exist", job_id, first_id)
        elif why not in ("done", "alive"):
            job_end(RescoreJob, job_id, status=JobStatus.FAILED, error=f"Products {first_id}-{last_id}: {why}")
        return
    now = timezone.now()
    RescoreJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(status=JobStatus.RUNNING, started_at=now)
    RescoreJob.objects.filter(pk=job_id).update(heartbeat_at=now)
    version_id = RescoreJob.objects.values_list("model_version_id", flat=True).get(pk=job_id)
    try:
        rows = score_product_range(version_id=version_id, first_id=first_id, last_id=last_id)
    except RETRYABLE:
        _release(chunk)
        raise  # retried by the task
    except Exception as exc:
        logger.exception("rescore chunk %s/%s failed", job_id, first_id)
        what = f"Re-scoring products {first_id}-{last_id}"
        job_end(RescoreJob, job_id, status=JobStatus.FAILED, error=describe_failure(exc, what=what))
        raise
    try:
        _write_chunk(chunk, rows, job_id=job_id, version_id=version_id, first_id=first_id, last_id=last_id)
    except _Stop:
        return
    except RETRYABLE:
        _release(chunk)
        raise  # retried by the task: the transaction left nothing behind
    RescoreJob.objects.filter(pk=job_id).update(heartbeat_at=timezone.now())
    _finish_if_complete(job_id)


def _release(chunk: RescoreChunk) -> None:
    """Let go of a chunk whose task failed on the database, so that its retry or a re-send takes it at once instead
    of waiting for it to go stale. Best effort: the database may still be away (then the retry's same-delivery rule,
    or staleness, frees it)."""
    try:
        RescoreChunk.objects.filter(pk=chunk.pk, claim_token=chunk.claim_token).update(claim_token=None)
    except DatabaseError:
        logger.warning("could not release rescore chunk %s", chunk.pk)


def _write_chunk(
    chunk: RescoreChunk, rows: Scores, *, job_id: int, version_id: int | None, first_id: int, last_id: int
) -> None:
    """Replace the chunk's rows in one transaction with its done flag and the job's counts; _Stop when the chunk or
    its job is no longer this worker's to write.

    The job's row is updated last: every chunk's transaction locks it, and taken first it was held through the
    COPY and its foreign-key checks, so a second worker's finished chunk waited for the first's whole write. The
    checks run with the COPY (not deferred to the commit) for the same reason. A job cancelled meanwhile still
    gets no rows: its status is read under that lock, and _Stop rolls the chunk's rows back."""
    with transaction.atomic():
        if not RescoreChunk.objects.filter(pk=chunk.pk, done=False, claim_token=chunk.claim_token).update(
            done=True, products=len(rows), finished_at=timezone.now(), claim_token=None
        ):
            raise _Stop()  # its twin finished first, or took it over
        if not RescoreJob.objects.filter(pk=job_id, status__in=UNFINISHED).exists():
            raise _Stop()  # cancelled or superseded: no need to write what would be rolled back below
        Prediction.objects.filter(
            model_version_id=version_id, product_id__gte=first_id, product_id__lte=last_id
        ).delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        predictions_write(rows=rows, version_id=version_id)
        # Counted only while the job is unfinished: a cancelled or superseded job gets no more rows.
        if not RescoreJob.objects.filter(pk=job_id, status__in=UNFINISHED).update(
            chunks_done=F("chunks_done") + 1, products_done=F("products_done") + len(rows), heartbeat_at=timezone.now()
        ):
            raise _Stop()


def _finish_if_complete(job_id: int) -> None:
    with transaction.atomic():
        job = RescoreJob.objects.select_for_update().get(pk=job_id)
        if job.status in FINISHED or RescoreChunk.objects.filter(job_id=job_id, done=False).exists():
            return
        job.status, job.finished_at = JobStatus.SUCCEEDED, timezone.now()
        job.save(update_fields=["status", "finished_at"])
        if job.model_version_id is not None:
            # The switch: from now on suggestions come from this version, all products at once.
            ModelVersion.objects.filter(is_serving=True).exclude(pk=job.model_version_id).update(is_serving=False)
            ModelVersion.objects.filter(pk=job.model_version_id).update(is_serving=True)
            # In the switch's transaction: what listeners record (the reclassification build job) commits with the
            # switch or not at all, so a worker lost right after the commit loses nothing.
            predictions_switched.send(sender=ModelVersion, version_id=job.model_version_id)
        elif not ModelVersion.objects.filter(is_serving=True).exists():
            # Zero-shot suggestions serve (no version does yet): listeners decide whether they propose anything.
            predictions_switched.send(sender=ModelVersion, version_id=None)

        # Older versions' predictions beyond what a rollback keeps: pruned once this switch has committed.
        transaction.on_commit(_prune_later)

        if job.model_version_id is not None or not ModelVersion.objects.filter(is_serving=True).exists():
            # Products created while the job ran were past its id ranges: they are scored on their own now.
            scoring_backlog_top_up(version_id=job.model_version_id, covered_until=job.created_at)


def _prune_later() -> None:
    from mlcore.tasks import predictions_prune_task

    try:
        predictions_prune_task.delay()
    except Exception:  # the broker is down: the next switch prunes; nothing depends on it
        logger.warning("could not queue the pruning of old predictions", exc_info=True)
