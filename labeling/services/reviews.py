"""Review: a manager settles what annotators disagreed on or flagged."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from catalog.models import Category, CategorySource, Product
from catalog.services.products import product_category_set
from config.errors import ConflictError, NotFoundError
from labeling.models import ReviewItem


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
