"""The one door to a product's category of record: set one, set many, revert one, revert a batch. Every write
checks the product's version (a stale decision never overwrites a newer one) and writes its CategoryChange rows,
so that any change can be undone exactly. Annotations, reviews, imports' callers and reclassification use it."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Category, CategoryChange, CategorySource, Product
from core.errors import ApplicationError, ConflictError, NotFoundError

# Rows locked and written per statement group: large enough to be set-based, small enough for one transaction.
BULK_CHUNK = 2000


def product_category_set(
    *,
    product_id: int,
    category_id: int | None,
    expected_version: int,
    source: str,
    actor: User | None,
    verified: bool,
    batch: uuid.UUID | None = None,
    note: str = "",
) -> Product:
    """Set (or clear) a product's category of record, refusing a stale write; writes the audit row."""
    if source not in CategorySource.values:
        raise ApplicationError(f"Unknown category source '{source}'.")
    with transaction.atomic():
        product = Product.objects.select_for_update().filter(pk=product_id).first()
        if product is None:
            raise NotFoundError(f"No product with id {product_id}.")
        if product.version != expected_version:
            raise ConflictError(
                "This product was changed by someone else since you opened it (version "
                f"{expected_version}, now {product.version}). Reload it to see the change.",
                extra={"current_version": product.version},
            )
        if category_id is not None and not Category.objects.filter(pk=category_id).exists():
            raise NotFoundError(f"No category with id {category_id}.")
        if category_id == product.category_id and verified == product.is_verified and source == product.category_source:
            return product
        CategoryChange.objects.create(
            product=product,
            from_category_id=product.category_id,
            from_source=product.category_source,
            from_verified=product.is_verified,
            to_category_id=category_id,
            source=source,
            verified=verified and category_id is not None,
            actor=actor if actor and actor.pk else None,
            batch=batch,
            note=note[:500],
        )
        product.category_id = category_id
        product.category_source = source if category_id is not None else ""
        product.is_verified = verified and category_id is not None
        product.category_set_by = actor if category_id is not None and actor and actor.pk else None
        product.category_set_at = timezone.now() if category_id is not None else None
        product.version += 1
        product.save()
    return product


@dataclass(frozen=True)
class CategoryAssignment:
    """One product's new category, decided when the product was at `expected_version`."""

    product_id: int
    expected_version: int
    category_id: int
    # A verified label stays verified (a category merged or mapped to a new release: the same decision, renamed).
    keep_verified: bool = False


@dataclass
class BulkResult:
    # product id -> the CategoryChange that set it
    changed: dict[int, int] = field(default_factory=dict)
    # product id -> why it was left alone
    skipped: dict[int, str] = field(default_factory=dict)


def categories_set_in_bulk(
    *,
    assignments: Iterable[CategoryAssignment],
    source: str,
    actor: User | None,
    batch: uuid.UUID,
    note: str = "",
    skip_verified: bool = True,
) -> BulkResult:
    """Set many products' categories set-based (a conditional UPDATE per target category and chunk, audit rows in
    bulk), never one save per product. A product changed since its assignment was decided (another version), or
    verified by a person meanwhile (skip_verified), is skipped and reported, never overwritten."""
    if source not in CategorySource.values:
        raise ApplicationError(f"Unknown category source '{source}'.")
    result = BulkResult()
    pending = list(assignments)
    actor_id = actor.pk if actor is not None and actor.pk else None
    for start in range(0, len(pending), BULK_CHUNK):
        chunk = {a.product_id: a for a in pending[start : start + BULK_CHUNK]}
        with transaction.atomic():
            rows = (
                Product.objects.select_for_update()
                .filter(pk__in=chunk)
                .values_list("pk", "version", "category_id", "category_source", "is_verified")
            )
            current = {pk: (version, category, src, verified) for pk, version, category, src, verified in rows}
            by_target: dict[tuple[int, bool], list[int]] = defaultdict(list)
            changes = []
            for pk, assignment in chunk.items():
                if pk not in current:
                    result.skipped[pk] = "deleted"
                    continue
                version, category, old_source, verified = current[pk]
                if version != assignment.expected_version:
                    result.skipped[pk] = "changed since"
                    continue
                if skip_verified and verified:
                    result.skipped[pk] = "verified since"
                    continue
                if category == assignment.category_id:
                    result.skipped[pk] = "already there"
                    continue
                stays_verified = bool(verified and assignment.keep_verified)
                by_target[(assignment.category_id, stays_verified)].append(pk)
                changes.append(
                    CategoryChange(
                        product_id=pk,
                        from_category_id=category,
                        from_source=old_source,
                        from_verified=verified,
                        to_category_id=assignment.category_id,
                        source=source,
                        verified=stays_verified,
                        actor_id=actor_id,
                        batch=batch,
                        note=note[:500],
                    )
                )
            _write_categories(
                [(pk, target, source, stays) for (target, stays), ids in by_target.items() for pk in ids], actor_id
            )
            for change in CategoryChange.objects.bulk_create(changes, batch_size=BULK_CHUNK):
                result.changed[change.product_id] = change.pk
    return result


def _write_categories(rows: list[tuple[int, int | None, str, bool]], actor_id: int | None) -> None:
    """Write (product, category, source, verified) rows of locked products, bumping their versions. PostgreSQL: one
    UPDATE ... FROM unnest(...) per chunk, whatever the number of target categories (a chunk of a real batch goes to
    hundreds); elsewhere (the demo's SQLite) one UPDATE per distinct (category, source, verified)."""
    if not rows:
        return
    now = timezone.now()
    if connection.vendor == "postgresql":
        table = Product._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE "{table}" AS p SET category_id = v.category, category_source = v.source, '
                "is_verified = v.verified, "
                "category_set_by_id = CASE WHEN v.category IS NULL THEN NULL ELSE %s::integer END, "
                "category_set_at = CASE WHEN v.category IS NULL THEN NULL ELSE %s::timestamptz END, "
                "version = p.version + 1, updated_at = %s "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], %s::boolean[]) "
                "AS v(id, category, source, verified) WHERE p.id = v.id",
                [
                    actor_id,
                    now,
                    now,
                    [r[0] for r in rows],
                    [r[1] for r in rows],
                    [r[2] for r in rows],
                    [r[3] for r in rows],
                ],
            )
        return
    groups: dict[tuple[int | None, str, bool], list[int]] = defaultdict(list)
    for pk, category, source, verified in rows:
        groups[(category, source, verified)].append(pk)
    for (category, source, verified), ids in groups.items():
        Product.objects.filter(pk__in=ids).update(
            category_id=category,
            category_source=source,
            is_verified=verified,
            category_set_by_id=actor_id if category else None,
            category_set_at=now if category else None,
            version=F("version") + 1,
            updated_at=now,
        )


def categories_revert_in_bulk(
    *, change_ids: Iterable[int], actor: User | None, batch: uuid.UUID, note: str = ""
) -> BulkResult:
    """Undo many changes exactly (category, source, verified), set-based. A product whose category changed again
    since its change is skipped and reported (`changed since`): an undo never overwrites a later decision."""
    result = BulkResult()
    ids = list(change_ids)
    actor_id = actor.pk if actor is not None and actor.pk else None
    for start in range(0, len(ids), BULK_CHUNK):
        with transaction.atomic():
            changes = list(CategoryChange.objects.filter(pk__in=ids[start : start + BULK_CHUNK]))
            products = {c.product_id for c in changes}
            locked = dict(Product.objects.select_for_update().filter(pk__in=products).values_list("pk", "category_id"))
            latest: dict[int, int] = {}
            for product_id, change_id in CategoryChange.objects.filter(product_id__in=products).values_list(
                "product_id", "pk"
            ):
                latest[product_id] = max(latest.get(product_id, 0), change_id)
            groups: dict[tuple[int | None, str, bool], list[int]] = defaultdict(list)
            reverts = []
            for change in changes:
                pk = change.product_id
                if pk not in locked:
                    result.skipped[pk] = "deleted"
                    continue
                if latest.get(pk) != change.pk or locked[pk] != change.to_category_id:
                    result.skipped[pk] = "changed since"
                    continue
                restored = change.from_category_id
                key = (restored, change.from_source if restored else "", bool(change.from_verified and restored))
                groups[key].append(pk)
                reverts.append(
                    CategoryChange(
                        product_id=pk,
                        from_category_id=change.to_category_id,
                        from_source=change.source,
                        from_verified=change.verified,
                        to_category_id=restored,
                        source=change.from_source or change.source,
                        verified=key[2],
                        actor_id=actor_id,
                        batch=batch,
                        note=(note or f"undo of change #{change.pk}")[:500],
                    )
                )
            _write_categories(
                [
                    (pk, restored, old_source, verified)
                    for (restored, old_source, verified), ids in groups.items()
                    for pk in ids
                ],
                actor_id,
            )
            for change in CategoryChange.objects.bulk_create(reverts, batch_size=BULK_CHUNK):
                result.changed[change.product_id] = change.pk
    return result


def product_category_revert(*, change_id: int, actor: User | None, note: str = "") -> Product:
    """Undo one category change exactly (category, source, verified), if nothing changed the product's category
    since; writes its own audit row."""
    with transaction.atomic():
        change = CategoryChange.objects.select_related("product").filter(pk=change_id).first()
        if change is None:
            raise NotFoundError(f"No category change with id {change_id}.")
        product = Product.objects.select_for_update().get(pk=change.product_id)
        later = CategoryChange.objects.filter(product=product, pk__gt=change.pk).exists()
        if later or product.category_id != change.to_category_id:
            raise ConflictError("The category changed again since; there is nothing to undo safely.")
        CategoryChange.objects.create(
            product=product,
            from_category_id=product.category_id,
            from_source=product.category_source,
            from_verified=product.is_verified,
            to_category_id=change.from_category_id,
            source=change.from_source or change.source,
            verified=change.from_verified,
            actor=actor,
            note=(note or f"undo of change #{change.pk}")[:500],
        )
        product.category_id = change.from_category_id
        product.category_source = change.from_source if change.from_category_id else ""
        product.is_verified = change.from_verified and change.from_category_id is not None
        product.category_set_by = actor if change.from_category_id else None
        product.category_set_at = timezone.now() if change.from_category_id else None
        product.version += 1
        product.save()
    return product
