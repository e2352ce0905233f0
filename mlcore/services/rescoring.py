"""Re-scoring: a prediction for every product from one version (or zero-shot), in id-range chunks on the `ml` queue.

Each chunk is idempotent (its rows are replaced in one transaction with the chunk's done flag), so a redelivered or
re-run chunk writes nothing twice, and a killed job resumes with the chunks that are not done. Suggestions switch to
the new version only when the last chunk lands.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from catalog.models import Category, Product
from core.broker import broker_check
from core.errors import NotFoundError
from core.jobs import describe_failure, job_cancel, job_end, job_enqueue_on_commit, lease_claim, takeover_reason
from core.models import FINISHED, UNFINISHED, JobStatus
from core.tasks import RETRYABLE
from mlcore.models import ModelVersion, ModelVersionStatus, Prediction, RescoreChunk, RescoreJob
from mlcore.services.common import base_model_path, category_hierarchy
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
            size = settings.MLCORE_RESCORE_CHUNK_SIZE
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


def rescore_job_enqueue(*, job_id: int) -> int:
    """Send a task for every chunk not done and not held by a live worker (a resume after a lost worker or a lost
    broker sends only those). Returns how many were sent."""
    from mlcore.tasks import rescore_chunk_task

    pending = []
    for chunk in RescoreChunk.objects.filter(job_id=job_id, done=False).order_by("first_id"):
        if chunk.claim_token is not None and takeover_reason(chunk) is None:
            continue  # a live worker is scoring it
        pending.append((chunk.first_id, chunk.last_id))
    for first, last in pending:
        rescore_chunk_task.delay(job_id, first, last)
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
    products = list(
        Product.objects.filter(id__gte=first_id, id__lte=last_id).values_list("id", "title", "brand", "description")
    )
    try:
        rows = score_products(version_id=version_id, products=products)
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
    chunk: RescoreChunk, rows: list[dict[str, Any]], *, job_id: int, version_id: int | None, first_id: int, last_id: int
) -> None:
    """Replace the chunk's rows in one transaction with its done flag and the job's counts; _Stop when the chunk or
    its job is no longer this worker's to write."""
    now = timezone.now()
    with transaction.atomic():
        if not RescoreChunk.objects.filter(pk=chunk.pk, done=False, claim_token=chunk.claim_token).update(
            done=True, products=len(rows), finished_at=timezone.now(), claim_token=None
        ):
            raise _Stop()  # its twin finished first, or took it over
        # Counted only while the job is unfinished: a cancelled or superseded job gets no more rows.
        if not RescoreJob.objects.filter(pk=job_id, status__in=UNFINISHED).update(
            chunks_done=F("chunks_done") + 1, products_done=F("products_done") + len(rows), heartbeat_at=now
        ):
            raise _Stop()
        Prediction.objects.filter(
            model_version_id=version_id, product_id__gte=first_id, product_id__lte=last_id
        ).delete()
        predictions_write(rows=rows, version_id=version_id)


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
        from mlcore.services.scoring import scoring_backlog_top_up

        # Older versions' predictions beyond what a rollback keeps: pruned once this switch has committed.
        transaction.on_commit(_prune_later)

        if job.model_version_id is not None or not ModelVersion.objects.filter(is_serving=True).exists():
            # Products created while the job ran were past its id ranges: they are scored on their own now.
            scoring_backlog_top_up(version_id=job.model_version_id, covered_until=job.created_at)


def predictions_write(*, rows: list[dict[str, Any]], version_id: int | None) -> None:
    """PostgreSQL: one COPY, rows formatted by psycopg's C code (bench/rescore.py: ~55x bulk_update of the same
    columns, both timed to their commit, where PostgreSQL runs the deferred foreign-key checks). Elsewhere:
    bulk_create."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        now = timezone.now()
        with (
            connection.cursor() as cursor,
            cursor.connection.cursor().copy(
                "COPY mlcore_prediction (product_id, model_version_id, top, category_id, confidence, margin, entropy, "
                "backoff_category_id, backoff_confidence, created_at) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(
                    (
                        row["product_id"],
                        version_id,
                        json.dumps(row["top"]),
                        row["category_id"],
                        row["confidence"],
                        row["margin"],
                        row["entropy"],
                        row.get("backoff_category_id"),
                        row.get("backoff_confidence"),
                        now,
                    )
                )
        return
    Prediction.objects.bulk_create([Prediction(model_version_id=version_id, **row) for row in rows], batch_size=500)


def score_products(*, version_id: int | None, products: list[tuple[int, str, str, str]]) -> list[dict[str, Any]]:
    """Top-k categories for (id, title, brand, description) rows, from a version's classifier or zero-shot."""
    from mlcore.engine.text import product_text
    from mlcore.engine.types import ProductText

    if not products:
        return []
    texts = [product_text(ProductText(title=t, brand=b, description=d)) for _, t, b, d in products]
    k = settings.MLCORE_TOP_K
    backoff: list[tuple[int | None, float | None]] = [(None, None)] * len(products)
    from mlcore.engine.hierarchy import margin_and_entropy

    if version_id is None:
        scorer, candidates, pks = _zeroshot()
        nodes, probabilities = scorer.top_k(texts, candidates, k=k)
        category_ids = [[pks[n] for n in row] for row in nodes]
        # The same uncertainty measures the classifier reports, over the top-k candidates' softmax.
        margins, entropies = margin_and_entropy(probabilities)
    else:
        classifier = _classifier(ModelVersion.objects.get(pk=version_id).artifact_path)
        predictions = classifier.predict(texts, top_k=k, keep_probabilities=True)
        category_ids = [[int(classifier.labels[i]) for i in row] for row in predictions.top_indices]
        probabilities, margins, entropies = predictions.top_probabilities, predictions.margin, predictions.entropy
        backoff = _backoff(classifier.labels, predictions.probabilities)
    return [
        {
            "product_id": pk,
            "top": [[c, round(float(p), 5)] for c, p in zip(ids, probs, strict=True)],
            "category_id": ids[0],
            "confidence": float(probs[0]),
            "margin": float(margin),
            "entropy": float(entropy),
            "backoff_category_id": back[0],
            "backoff_confidence": back[1],
        }
        for (pk, *_), ids, probs, margin, entropy, back in zip(
            products, category_ids, probabilities, margins, entropies, backoff, strict=True
        )
    ]


def _backoff(labels: list[str], probabilities: Any) -> list[tuple[int | None, float | None]]:
    """Roll the classes' probabilities up the tree and keep the deepest node above the threshold."""
    from mlcore.engine.hierarchy import Rollup

    hierarchy, pks = category_hierarchy()
    chosen, confidence = Rollup.build(hierarchy, labels).backoff(
        probabilities, threshold=settings.MLCORE_BACKOFF_THRESHOLD
    )
    return [(pks[c], float(p)) if c >= 0 else (None, None) for c, p in zip(chosen, confidence, strict=True)]


@lru_cache(maxsize=2)
def _classifier(artifact_path: str) -> Any:
    """One loaded model per worker process and version (a worker serves many chunks)."""
    from mlcore.engine.prediction import Classifier

    return Classifier(
        artifact_path,
        device=settings.MLCORE_DEVICE,
        max_length=settings.MLCORE_MAX_LENGTH,
        quantize=settings.MLCORE_QUANTIZE,
    )


def _zeroshot() -> tuple[Any, list[int], list[int]]:
    from mlcore.engine.zeroshot import CategoryTexts, Encoder, ZeroShotScorer

    hierarchy, pks = category_hierarchy()
    key = (len(pks), Category.objects.order_by("-updated_at").values_list("updated_at", flat=True).first())
    cached = _ZEROSHOT_CACHE.get("scorer")
    if cached is None or cached[0] != key:
        rows = {pk: (name, path) for pk, name, path in Category.objects.values_list("pk", "name_en", "full_path_en")}
        texts = CategoryTexts(
            hierarchy=hierarchy,
            names=[rows[pk][0] for pk in pks],
            paths=[rows[pk][1] for pk in pks],
        )
        model = base_model_path()
        encoder = Encoder(model, device=settings.MLCORE_DEVICE, max_length=settings.MLCORE_MAX_LENGTH)
        scorer = ZeroShotScorer(
            encoder, texts, cache_dir=settings.MLCORE_ARTIFACT_DIR / "zeroshot-cache", model_name=model
        )
        cached = (key, scorer)
        _ZEROSHOT_CACHE["scorer"] = cached
    index = {pk: i for i, pk in enumerate(pks)}
    return cached[1], [index[pk] for pk in zeroshot_candidates() if pk in index], pks


_ZEROSHOT_CACHE: dict[str, Any] = {}


def scoring_caches_clear() -> None:
    """Drop this process's cached inference models and give their GPU memory back (a training run needs it)."""
    _classifier.cache_clear()
    _ZEROSHOT_CACHE.clear()
    from mlcore.engine.device import release_memory

    release_memory()


def zeroshot_candidates() -> list[int]:
    """Categories zero-shot may suggest: those the catalog already uses (when it uses at least two), else every
    active leaf of the taxonomy (MLCORE_ZEROSHOT_CANDIDATES=leaves forces the latter)."""
    if settings.MLCORE_ZEROSHOT_CANDIDATES == "used":
        used = sorted(set(Product.objects.exclude(category=None).values_list("category_id", flat=True).distinct()))
        if len(used) >= 2:
            return used
    return list(Category.objects.filter(has_children=False, is_active=True).values_list("pk", flat=True))


def _prune_later() -> None:
    from mlcore.tasks import predictions_prune_task

    try:
        predictions_prune_task.delay()
    except Exception:  # the broker is down: the next switch prunes; nothing depends on it
        logger.warning("could not queue the pruning of old predictions", exc_info=True)


def predictions_prune(*, keep: int | None = None, chunk: int = 20_000) -> int:
    """Delete the stored predictions of versions beyond the serving one, the active one and the `keep`
    (MLCORE_KEEP_VERSIONS) most recent others: a rollback to those serves at once, to an older one re-scores.
    Deleted a chunk at a time, so that one transaction never holds millions of rows. Returns how many."""
    keep = settings.MLCORE_KEEP_VERSIONS if keep is None else keep
    kept = set(
        ModelVersion.objects.filter(Q(is_serving=True) | Q(status=ModelVersionStatus.ACTIVE)).values_list(
            "pk", flat=True
        )
    )
    others = ModelVersion.objects.exclude(pk__in=kept).order_by("-number").values_list("pk", flat=True)
    kept |= set(others[:keep])
    deleted = 0
    while True:
        ids = list(
            Prediction.objects.filter(model_version__isnull=False)
            .exclude(model_version_id__in=kept)
            .values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            break
        deleted += Prediction.objects.filter(pk__in=ids).delete()[0]
    if deleted:
        logger.info("pruned %s stored predictions of versions no longer kept", deleted)
    return deleted
