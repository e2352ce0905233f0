"""The queue: hands each annotator one item at a time under a lease, choosing what the model learns most from.

Invariants (tests/labeling/services/test_queue.py runs them with threads against PostgreSQL): an item never goes to
more annotators than its overlap, never twice to one annotator, and a lease that expires frees its slot. The product
row is locked (FOR UPDATE SKIP LOCKED) while its slot is counted and taken, so two annotators never take the last one.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from catalog.models import CategorySource, Product
from labeling.models import (
    Annotation,
    AnnotationKind,
    LabelingQueue,
    Lease,
    ProposalAuditItem,
    ProposalState,
    ReclassificationProposal,
    ReviewItem,
)
from labeling.services.reclassification import open_proposal_products
from mlcore.models import ModelVersion, Prediction
from mlcore.selectors import serving_version

BATCH = 50
PAGES_PER_STRATEGY = 4
# The model must be this sure before its disagreement with an unverified import is worth a person's look.
DISAGREEMENT_CONFIDENCE = 0.8
STRATEGIES = ("uncertainty", "disagreement", "random")


def overlap(product_id: int) -> int:
    """Annotators wanted for an item: LABELING_OVERLAP, plus one for a stable share of items (agreement)."""
    share = int(hashlib.sha256(f"double:{product_id}".encode()).hexdigest()[:8], 16) / 2**32
    return int(settings.LABELING_OVERLAP) + (1 if share < settings.LABELING_DOUBLE_SHARE else 0)


def _strategy_order(rng: random.Random) -> list[str]:
    weights = settings.LABELING_STRATEGY_WEIGHTS
    first = rng.choices(list(weights), weights=list(weights.values()))[0]
    order = [first, *[s for s in STRATEGIES if s != first and weights.get(s, 0) > 0]]
    # Random last, whatever its weight: products with no stored score yet (just imported) stay reachable.
    return order if "random" in order else [*order, "random"]


def _open_for(annotator: User, now: object) -> Q:
    """Products this annotator may still be handed: unverified, not answered or held by them, not under review."""
    mine = Annotation.objects.filter(product=OuterRef("pk"), annotator=annotator, undone_at__isnull=True)
    held = Lease.objects.filter(product=OuterRef("pk"), annotator=annotator)
    review = ReviewItem.objects.filter(product=OuterRef("pk"), resolved_at__isnull=True)
    return Q(is_verified=False) & ~Q(Exists(mine)) & ~Q(Exists(held)) & ~Q(Exists(review))


def _in_scope(scope: LabelingQueue | None, version: ModelVersion | None) -> Q:
    if scope is None:
        return Q()
    condition = Q()
    if scope.category_id is not None:
        path = scope.category.path  # type: ignore[union-attr]
        suggested = Prediction.objects.filter(
            product=OuterRef("pk"), model_version=version, category__path__startswith=path
        )
        condition &= Q(category__path__startswith=path) | Q(Exists(suggested))
    if scope.import_batch is not None:
        condition &= Q(import_batch=scope.import_batch)
    if scope.audit_id is not None:
        condition &= Q(pk__in=ProposalAuditItem.objects.filter(audit_id=scope.audit_id).values("proposal__product_id"))
    if scope.sent_from_id is not None:
        sent = ReclassificationProposal.objects.filter(batch_id=scope.sent_from_id, state=ProposalState.SENT)
        condition &= Q(pk__in=sent.values("product_id"))
    return condition


def _candidates(
    strategy: str, annotator: User, now: object, rng: random.Random, scope: LabelingQueue | None = None
) -> Iterator[list[int]]:
    version = serving_version()
    open_products = Product.objects.filter(_open_for(annotator, now), _in_scope(scope, version))
    if strategy == "uncertainty":
        # Smallest margin between the two best categories first: read from stored scores, never a model call.
        predictions = Prediction.objects.filter(model_version=version, product__in=open_products).order_by("margin")
        for page in range(PAGES_PER_STRATEGY):
            ids = list(predictions.values_list("product_id", flat=True)[page * BATCH : (page + 1) * BATCH])
            if not ids:
                return
            yield ids
    elif strategy == "disagreement":
        if version is None:
            return
        predictions = (
            Prediction.objects.filter(
                model_version=version,
                confidence__gte=DISAGREEMENT_CONFIDENCE,
                product__in=open_products.filter(category_source=CategorySource.IMPORT),
            )
            .exclude(product__category_id=F("category_id"))
            # A product with an open reclassification proposal waits for the manager's decision instead.
            .exclude(product__in=open_proposal_products())
            .order_by("-confidence")
        )
        for page in range(PAGES_PER_STRATEGY):
            ids = list(predictions.values_list("product_id", flat=True)[page * BATCH : (page + 1) * BATCH])
            if not ids:
                return
            yield ids
    else:
        # Random: from a random point in the id range, wrapping once: an unbiased sample without ORDER BY random().
        bounds = Product.objects.filter(is_verified=False).order_by("id").values_list("id", flat=True)
        low, high = bounds.first(), bounds.last()
        if low is None or high is None:
            return
        pivot = rng.randint(low, high)
        for condition in (Q(id__gte=pivot), Q(id__lt=pivot)):
            ids = list(open_products.filter(condition).order_by("id").values_list("id", flat=True)[:BATCH])
            if ids:
                yield ids


def has_room(product_id: int, annotator: User, now: object) -> bool:
    """Whether one more annotator may take the item (call with the product row locked)."""
    answers = Annotation.objects.filter(product_id=product_id, kind=AnnotationKind.LABEL, undone_at__isnull=True)
    holders = Lease.objects.filter(product_id=product_id, expires_at__gt=now).exclude(annotator=annotator)
    return answers.count() + holders.count() < overlap(product_id)


def queue_next(
    *, annotator: User, rng: random.Random | None = None, scope: LabelingQueue | None = None, position: int = 0
) -> Lease | None:
    """The annotator's current item, or a new one under a fresh lease (from `scope` only, when given); None when
    the queue is empty. position=1 is the item on deck: the workspace prepares it while the annotator works on the
    current one, so moving on needs no round trip. An annotator holds at most position + 1 leases."""
    rng = rng or random.Random()
    # Rows another annotator holds locked for a few milliseconds are skipped, not waited for; when that is all that
    # was left, look again shortly rather than tell the annotator that the queue is empty.
    for attempt in range(4):
        lease, saw_locked = _take_next(annotator, rng, scope, position)
        if lease is not None or not saw_locked:
            return lease
        time.sleep(0.02 * (attempt + 1))
    return None


def _held(annotator: User, scope: LabelingQueue | None, now: object) -> list[Lease]:
    """The annotator's live leases, oldest (the current item) first; those outside `scope` are let go (the
    annotator switched to a queue they are not in)."""
    live = list(
        Lease.objects.select_related("product")
        .filter(annotator=annotator, expires_at__gt=now)
        .order_by("created_at", "id")
    )
    if scope is not None and live:
        inside = set(
            Product.objects.filter(pk__in=[lease.product_id for lease in live])
            .filter(_in_scope(scope, serving_version()))
            .values_list("pk", flat=True)
        )
        outside = [lease.pk for lease in live if lease.product_id not in inside]
        if outside:
            Lease.objects.filter(pk__in=outside).delete()
            live = [lease for lease in live if lease.product_id in inside]
    return live


def _take_next(
    annotator: User, rng: random.Random, scope: LabelingQueue | None, position: int = 0
) -> tuple[Lease | None, bool]:
    now = timezone.now()
    saw_locked = False
    with transaction.atomic():
        held = _held(annotator, scope, now)
        if len(held) > position:
            return held[position], False
        Lease.objects.filter(annotator=annotator, expires_at__lte=now).delete()
        while len(held) <= position:
            lease, locked = _take_one(annotator, rng, scope, now)
            saw_locked = saw_locked or locked
            if lease is None:
                return None, saw_locked
            held.append(lease)
        return held[position], False


def _take_one(
    annotator: User, rng: random.Random, scope: LabelingQueue | None, now: datetime
) -> tuple[Lease | None, bool]:
    saw_locked = False
    for strategy in _strategy_order(rng):
        for ids in _candidates(strategy, annotator, now, rng, scope):
            locked = set(
                Product.objects.select_for_update(skip_locked=True).filter(pk__in=ids).values_list("pk", flat=True)
            )
            saw_locked = saw_locked or len(locked) < len(ids)
            for pk in ids:
                if pk in locked and has_room(pk, annotator, now):
                    Lease.objects.filter(product_id=pk, expires_at__lte=now).delete()
                    lease = Lease.objects.create(
                        product_id=pk,
                        annotator=annotator,
                        strategy=strategy,
                        expires_at=now + timedelta(seconds=settings.LABELING_LEASE_SECONDS),
                    )
                    return Lease.objects.select_related("product").get(pk=lease.pk), False
    return None, saw_locked


def leases_extend(*, annotator: User) -> int:
    """Restart the clock on every item the annotator holds (they are working: the one on deck is next)."""
    expires = timezone.now() + timedelta(seconds=settings.LABELING_LEASE_SECONDS)
    return Lease.objects.filter(annotator=annotator, expires_at__gt=timezone.now()).update(expires_at=expires)


def lease_grant(*, annotator: User, product_id: int, strategy: str = "undo") -> Lease:
    """Give an item back to an annotator (after an undo), whatever the queue would choose."""
    now = timezone.now()
    lease, _ = Lease.objects.update_or_create(
        product_id=product_id,
        annotator=annotator,
        defaults={"strategy": strategy, "expires_at": now + timedelta(seconds=settings.LABELING_LEASE_SECONDS)},
    )
    return lease
