"""Every product has suggestions: products created, edited or imported are scored on their own, a few hundred at a
time, by the serving version (zero-shot before there is one), instead of waiting for the next full re-score. The
backlog table is the durable part: a debounced task drains it after each change, beat drains it every minute, and a
version's switch tops it up with the products its re-score did not reach (created while it ran)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from catalog.models import Product
from core.models import UNFINISHED
from mlcore.models import Prediction, RescoreJob, ScoringBacklog
from mlcore.selectors import serving_version
from mlcore.services.rescoring import predictions_write, score_products

logger = logging.getLogger(__name__)

SCHEDULED_KEY = "mlcore:scoring-backlog-scheduled"


def scoring_backlog_add(*, product_ids: Iterable[int]) -> int:
    """Queue products for scoring (in the caller's transaction) and, once it commits, a debounced drain."""
    now = timezone.now()
    ids = sorted(set(product_ids))
    for start in range(0, len(ids), 2000):
        ScoringBacklog.objects.bulk_create(
            [ScoringBacklog(product_id=pk, queued_at=now) for pk in ids[start : start + 2000]],
            update_conflicts=True,
            unique_fields=["product"],
            update_fields=["queued_at"],
        )
    if ids:
        transaction.on_commit(scoring_backlog_schedule)
    return len(ids)


def scoring_backlog_schedule() -> None:
    """One drain per debounce window: a burst of edits (an import's chunks, an annotator's session) is scored
    together. Best effort: with the broker down, beat's minute drain picks the backlog up."""
    if not cache.add(SCHEDULED_KEY, 1, timeout=settings.MLCORE_SCORE_DEBOUNCE_SECONDS):
        return
    from mlcore.tasks import scoring_backlog_task

    try:
        scoring_backlog_task.apply_async(countdown=settings.MLCORE_SCORE_DEBOUNCE_SECONDS)
    except Exception:  # the broker is down: the backlog waits for beat, nothing is lost
        logger.warning("could not queue the scoring backlog's drain; beat will drain it", exc_info=True)


def scoring_backlog_drain(*, batch: int | None = None, budget_seconds: float | None = None) -> int:
    """Score the backlog, oldest first, `batch` products a transaction, until it is empty or the time budget is
    spent (the next drain goes on). Rows another drain holds are skipped, never scored twice at once. Returns how
    many products were scored."""
    batch = batch or settings.MLCORE_SCORE_BATCH
    budget = budget_seconds if budget_seconds is not None else settings.MLCORE_SCORE_BUDGET_SECONDS
    started = time.monotonic()
    scored = 0
    while time.monotonic() - started < budget:
        with transaction.atomic():
            version = serving_version()
            version_id = version.pk if version is not None else None
            waiting = ScoringBacklog.objects.select_for_update(skip_locked=True)
            covering = (
                RescoreJob.objects.filter(model_version_id=version_id, status__in=UNFINISHED)
                .order_by("created_at")
                .first()
            )
            if covering is not None:
                # A full re-score for this version is under way: it scores what was queued before it started (and
                # clears those rows when it completes); only what changed since is scored here.
                waiting = waiting.filter(queued_at__gt=covering.created_at)
            rows = list(waiting.order_by("queued_at").values_list("product_id", "queued_at")[:batch])
            if not rows:
                break
            products = list(
                Product.objects.filter(pk__in=[pk for pk, _ in rows])
                .order_by("pk")
                .values_list("pk", "title", "brand", "description")
            )
            predictions = score_products(version_id=version_id, products=products)
            Prediction.objects.filter(model_version_id=version_id, product_id__in=[p[0] for p in products]).delete()
            predictions_write(rows=predictions, version_id=version_id)
            # Only as read: a product changed again meanwhile (queued_at moved on) stays for the next drain.
            for pk, queued_at in rows:
                ScoringBacklog.objects.filter(product_id=pk, queued_at=queued_at).delete()
            scored += len(products)
    if scored:
        logger.info("scored %s product(s) from the backlog", scored)
    return scored


def scoring_backlog_top_up(*, version_id: int | None, covered_until: datetime) -> int:
    """When a full re-score completes (in the transaction that makes its version serve): forget what it covered
    (queued before it started) and queue the products that have no prediction of the version (created while it ran,
    after their id range was cut)."""
    ScoringBacklog.objects.filter(queued_at__lte=covered_until).delete()
    missing = Product.objects.filter(
        ~Exists(Prediction.objects.filter(product_id=OuterRef("pk"), model_version_id=version_id))
    ).values_list("pk", flat=True)
    return scoring_backlog_add(product_ids=list(missing))
