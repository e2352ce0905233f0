"""Review: a manager settles what annotators disagreed on or flagged."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from catalog.models import Category, CategorySource, Product
from catalog.services.labels import product_category_set
from core.errors import ConflictError, NotFoundError
from labeling.models import ReviewItem, ReviewReason


def review_resolve(
    *, item_id: int, reviewer: User, category_id: int | None, product_version: int | None = None
) -> ReviewItem:
    """Adjudicate: the category becomes the label of record (verified) and every open review of the product closes.
    category_id None dismisses the item and leaves the product as it is."""
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().filter(pk=item_id).first()
        if item is None:
            raise NotFoundError(f"No review item with id {item_id}.")
        if item.resolved_at is not None:
            raise ConflictError("Someone else resolved this item already.")
        product = Product.objects.select_for_update().get(pk=item.product_id)
        if product_version is not None and product.version != product_version:
            raise ConflictError("The product changed since you opened it; reload to see its current category.")
        if category_id is not None:
            if not Category.objects.filter(pk=category_id, is_active=True).exists():
                raise NotFoundError(f"No active category with id {category_id}.")
            product_category_set(
                product_id=product.pk,
                category_id=category_id,
                expected_version=product.version,
                source=CategorySource.ANNOTATION,
                actor=reviewer,
                verified=True,
                note=f"adjudicated by {reviewer.get_username()}",
            )
        now = timezone.now()
        ReviewItem.objects.filter(product=product, resolved_at__isnull=True).update(
            resolved_at=now, resolved_by=reviewer, resolved_category_id=category_id
        )
        item.refresh_from_db()
    return item


def review_items_from_label_audit(*, audit_id: int) -> int:
    """Route an audit's likely label errors to review; returns how many new review items were opened.

    Skipped: products whose label changed since the audit read it (someone already acted), products with an open
    item of the same reason, and labels a reviewer already confirmed after an earlier audit flagged them (asking
    the same question after every training run would teach reviewers to dismiss without looking)."""
    from mlcore.models import LabelIssue

    issues = list(LabelIssue.objects.filter(audit_id=audit_id).select_related("given_category", "suggested_category"))
    current = dict(
        Product.objects.filter(pk__in=[i.product_id for i in issues], is_verified=True).values_list("pk", "category_id")
    )
    confirmed = set(
        ReviewItem.objects.filter(
            reason=ReviewReason.LIKELY_LABEL_ERROR, product_id__in=current, resolved_at__isnull=False
        ).values_list("product_id", "resolved_category_id")
    )
    items = [
        ReviewItem(
            product_id=issue.product_id,
            reason=ReviewReason.LIKELY_LABEL_ERROR,
            suggested_category_id=issue.suggested_category_id,
            note=(
                f"held-out model: {issue.given_probability:.0%} for the current label, "
                f"{issue.suggested_probability:.0%} for {issue.suggested_category.name_en}"
            ),
        )
        for issue in issues
        if current.get(issue.product_id) == issue.given_category_id
        and (issue.product_id, issue.given_category_id) not in confirmed
    ]
    before = ReviewItem.objects.filter(reason=ReviewReason.LIKELY_LABEL_ERROR, resolved_at__isnull=True).count()
    ReviewItem.objects.bulk_create(items, ignore_conflicts=True, batch_size=1000)
    return ReviewItem.objects.filter(reason=ReviewReason.LIKELY_LABEL_ERROR, resolved_at__isnull=True).count() - before
