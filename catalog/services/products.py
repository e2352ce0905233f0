"""A product's own fields: create and change them (its category of record: catalog/services/labels.py; importing
files: catalog/imports/)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from catalog.models import CategorySource, Product
from catalog.signals import products_changed
from core.errors import ApplicationError, ConflictError, NotFoundError

EDITABLE_FIELDS = ("title", "description", "brand", "attributes")


def product_create(
    *,
    sku: str,
    title: str,
    description: str = "",
    brand: str = "",
    attributes: dict[str, Any] | None = None,
    category_id: int | None = None,
    actor: User | None = None,
) -> Product:
    sku = sku.strip()
    if not sku or not title.strip():
        raise ApplicationError("A product needs a sku and a title.")
    with transaction.atomic():
        if Product.objects.filter(sku=sku).exists():
            raise ConflictError(f"A product with sku '{sku}' already exists.")
        product = Product.objects.create(
            sku=sku, title=title.strip(), description=description, brand=brand, attributes=attributes or {}
        )
        products_changed.send(sender=Product, product_ids=[product.pk])
        if category_id is not None:
            from catalog.services.labels import product_category_set

            product = product_category_set(
                product_id=product.pk,
                category_id=category_id,
                expected_version=1,
                source=CategorySource.MANUAL,
                actor=actor,
                verified=True,
            )
    return product


def product_update(*, product_id: int, expected_version: int, changes: dict[str, Any]) -> Product:
    """Change a product's own fields (not its category: see product_category_set), refusing a stale write."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        product = Product.objects.select_for_update().filter(pk=product_id).first()
        if product is None:
            raise NotFoundError(f"No product with id {product_id}.")
        if product.version != expected_version:
            raise ConflictError(
                f"This product was changed by someone else (version {expected_version}, now {product.version}).",
                extra={"current_version": product.version},
            )
        dirty = [name for name, value in changes.items() if getattr(product, name) != value]
        if not dirty:
            return product
        for name in dirty:
            setattr(product, name, changes[name])
        if not product.title.strip():
            raise ApplicationError("The title cannot be empty.")
        product.version += 1
        product.save(update_fields=[*dirty, "version", "updated_at"])
        products_changed.send(sender=Product, product_ids=[product.pk])
    return product
