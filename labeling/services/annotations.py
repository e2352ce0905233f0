"""Annotations: an annotator's answer for an item, and how answers become the label of record."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from catalog.models import Category, CategoryChange, CategorySource, Product
from catalog.services.labels import product_category_revert, product_category_set
from core.errors import ApplicationError, ConflictError, NotFoundError
from labeling.models import Annotation, AnnotationKind, Lease, ReviewItem, ReviewReason
from labeling.services.queue import has_room, lease_grant, overlap

logger = logging.getLogger(__name__)

UNDO_WINDOW = timedelta(minutes=30)


def _existing(client_key: str | None, annotator: User) -> Annotation | None:
    if not client_key:
        return None
    annotation = Annotation.objects.filter(client_key=client_key).first()
    if annotation is not None and annotation.annotator_id != annotator.pk:
        raise ConflictError("That client key belongs to another annotator's answer.")
    return annotation


def _take(product_id: int, annotator: User, product_version: int | None) -> tuple[Product, Lease | None]:
    """Lock the product and check the annotator may still answer it (call inside a transaction)."""
    product = Product.objects.select_for_update().filter(pk=product_id).first()
    if product is None:
        raise NotFoundError(f"No product with id {product_id}.")
    if product_version is not None and product.version != product_version:
        raise ConflictError(
            "This product changed since you opened it (someone set its category). Your answer was not saved; "
            "the next item is on its way.",
            extra={"current_version": product.version},
        )
    if Annotation.objects.filter(product=product, annotator=annotator, undone_at__isnull=True).exists():
        raise ConflictError("You have already answered this item.")
    now = timezone.now()
    lease = Lease.objects.filter(product=product, annotator=annotator).first()
    if (lease is None or lease.expires_at <= now) and not has_room(product.pk, annotator, now):
        raise ConflictError("Your time on this item ran out and it went to someone else.")
    return product, lease


def annotation_submit(
    *,
    annotator: User,
    product_id: int,
    category_id: int,
    product_version: int | None = None,
    client_key: str | None = None,
) -> Annotation:
    """Record a label; when the item's overlap is met and the answers agree, it becomes the label of record."""
    existing = _existing(client_key, annotator)
    if existing is not None:
        return existing
    with transaction.atomic():
        product, lease = _take(product_id, annotator, product_version)
        if not Category.objects.filter(pk=category_id, is_active=True).exists():
            raise NotFoundError(f"No active category with id {category_id}.")
        annotation = Annotation.objects.create(
            product=product,
            annotator=annotator,
            kind=AnnotationKind.LABEL,
            category_id=category_id,
            client_key=client_key or None,
            strategy=lease.strategy if lease else "",
        )
        Lease.objects.filter(product=product, annotator=annotator).delete()
        settled = _resolve(product, annotation)
    if settled:
        transaction.on_commit(_maybe_retrain)
    return annotation


def _resolve(product: Product, latest: Annotation) -> bool:
    labels = list(Annotation.objects.filter(product=product, kind=AnnotationKind.LABEL, undone_at__isnull=True))
    if len(labels) < overlap(product.pk):
        return False
    categories = {a.category_id for a in labels}
    if len(categories) > 1:
        ReviewItem.objects.get_or_create(product=product, reason=ReviewReason.DISAGREEMENT, resolved_at=None)
        return False
    product_category_set(
        product_id=product.pk,
        category_id=latest.category_id,
        expected_version=product.version,
        source=CategorySource.ANNOTATION,
        actor=latest.annotator,
        verified=True,
        note=f"{len(labels)} annotator(s) agree",
    )
    change = CategoryChange.objects.filter(product=product).latest("id")
    latest.category_change_id = change.pk
    latest.save(update_fields=["category_change_id"])
    return True


def annotation_skip(*, annotator: User, product_id: int, client_key: str | None = None) -> Annotation:
    existing = _existing(client_key, annotator)
    if existing is not None:
        return existing
    with transaction.atomic():
        product, _ = _take(product_id, annotator, None)
        annotation = Annotation.objects.create(
            product=product, annotator=annotator, kind=AnnotationKind.SKIP, client_key=client_key or None
        )
        Lease.objects.filter(product=product, annotator=annotator).delete()
    return annotation


def annotation_flag(*, annotator: User, product_id: int, reason: str, client_key: str | None = None) -> Annotation:
    """Send an item to review (wrong data, no fitting category...), with the annotator's reason."""
    if not reason.strip():
        raise ApplicationError("Say why you flag the item.")
    existing = _existing(client_key, annotator)
    if existing is not None:
        return existing
    with transaction.atomic():
        product, _ = _take(product_id, annotator, None)
        annotation = Annotation.objects.create(
            product=product,
            annotator=annotator,
            kind=AnnotationKind.FLAG,
            reason=reason.strip()[:500],
            client_key=client_key or None,
        )
        Lease.objects.filter(product=product, annotator=annotator).delete()
        ReviewItem.objects.get_or_create(
            product=product, reason=ReviewReason.FLAG, resolved_at=None, defaults={"note": reason.strip()[:500]}
        )
    return annotation


def annotation_undo(*, annotator: User) -> Annotation:
    """Take back the annotator's last answer (within 30 minutes): a label of record it set is reverted exactly, and
    the item comes back to them."""
    with transaction.atomic():
        annotation = (
            Annotation.objects.select_for_update()
            .filter(annotator=annotator, undone_at__isnull=True)
            .order_by("-created_at", "-id")
            .first()
        )
        if annotation is None or timezone.now() - annotation.created_at > UNDO_WINDOW:
            raise ApplicationError("Nothing to undo.")
        if annotation.category_change_id is not None:
            product_category_revert(
                change_id=annotation.category_change_id, actor=annotator, note=f"undo by {annotator.get_username()}"
            )
        if annotation.kind == AnnotationKind.FLAG:
            ReviewItem.objects.filter(product=annotation.product, reason=ReviewReason.FLAG, resolved_at=None).delete()
        annotation.undone_at = timezone.now()
        annotation.save(update_fields=["undone_at"])
        Lease.objects.filter(annotator=annotator).exclude(product=annotation.product).delete()
        lease_grant(annotator=annotator, product_id=annotation.product_id)
    return annotation


def _maybe_retrain() -> None:
    """A settled label may make a run due under the retraining policy (mlcore's; beat checks it every minute too)."""
    from mlcore.services.policy import retraining_check

    retraining_check()
