"""Product import (upsert by SKU) and changes to a product's category of record."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from catalog.models import Category, CategoryChange, CategorySource, Product
from catalog.services.reading import (
    CountingReader,
    FileFormatError,
    ProgressCallback,
    Record,
    RowError,
    cell,
    guess_format,
    iter_delimited,
    iter_jsonl,
    no_progress,
)
from catalog.services.taxonomy import PATH_SEPARATOR, _path_id, _split_path, tree_rebuild
from core.errors import ApplicationError, ConflictError, NotFoundError

KNOWN_COLUMNS = ("sku", "title", "description", "brand", "category", "attributes")
LIMITS = {"sku": 100, "title": 1000, "brand": 255}


@dataclass
class ProductRow:
    line: int
    sku: str
    title: str
    description: str | None  # None: the file has no such column, leave the product's value alone
    brand: str | None
    attributes: dict[str, Any]
    category_ref: str  # "" leaves the category alone
    category_id: int | None = None


@dataclass(frozen=True)
class WrittenSoFar:
    """What an interrupted import had written: the next run skips these chunks and goes on counting from here."""

    chunks: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_verified: int = 0
    categories_created: int = 0


@dataclass
class ProductImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    kept_verified: int = 0
    categories_created: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    written: bool = False
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < settings.CATALOG_IMPORT_MAX_ERRORS:
            self.errors.append(error)


class CategoryResolver:
    """Finds a category by external id or full path (English or Chinese), loaded once: 10k nodes is ~2 MB."""

    def __init__(self, *, create_missing: bool) -> None:
        self.create_missing = create_missing
        self.by_key: dict[str, int] = {}
        for pk, external_id, en, zh in Category.objects.values_list(
            "pk", "external_id", "full_path_en", "full_path_zh_hans"
        ):
            self.by_key[external_id] = pk
            self.by_key[self._path_key(en)] = pk
            if zh:
                self.by_key.setdefault(self._path_key(zh), pk)
        self.to_create: set[str] = set()

    @staticmethod
    def _path_key(path: str) -> str:
        return "path:" + PATH_SEPARATOR.join(_split_path(path)).casefold()

    def resolve(self, ref: str) -> int | str | None:
        """The category's pk, or an error message."""
        pk = self.by_key.get(ref)
        if pk is None and ">" in ref:
            pk = self.by_key.get(self._path_key(ref))
        if pk is not None:
            return pk
        if self.create_missing and ">" in ref and all(_split_path(ref)):
            self.to_create.add(PATH_SEPARATOR.join(_split_path(ref)))
            return None
        hint = " (pass the option to create missing categories to add it)" if ">" in ref else ""
        return f"no such category: give a category id or a full path like 'Home & Garden > Kitchen & Dining'{hint}"

    def create_pending(self) -> int:
        """Create the categories named by path that did not exist (only when asked)."""
        created = 0
        for full in sorted(self.to_create):
            parts = _split_path(full)
            parent: Category | None = None
            for depth in range(1, len(parts) + 1):
                prefix = PATH_SEPARATOR.join(parts[:depth])
                pk = self.by_key.get(self._path_key(prefix))
                if pk is not None:
                    parent = Category.objects.get(pk=pk)
                    continue
                parent = Category.objects.create(
                    external_id=_path_id(prefix),
                    parent=parent,
                    name_en=parts[depth - 1],
                    taxonomy_release="import",
                    depth=depth,
                    path="",
                    full_path_en=prefix,
                )
                self.by_key[self._path_key(prefix)] = parent.pk
                created += 1
        if created:
            tree_rebuild()
        self.to_create.clear()
        return created


def _row_from_record(
    record: Record, resolver: CategoryResolver, has_column: dict[str, bool]
) -> ProductRow | list[RowError]:
    values = record.values
    errors = list(record.errors)
    if errors:
        return errors
    sku = cell(values, "sku")
    title = cell(values, "title")
    if not sku:
        errors.append(RowError(record.line, "sku", "empty sku"))
    if not title:
        errors.append(RowError(record.line, "title", "empty title", sku))
    for name, limit in LIMITS.items():
        if len(cell(values, name)) > limit:
            errors.append(RowError(record.line, name, f"longer than {limit} characters", cell(values, name)[:200]))
    attributes: dict[str, Any] = {}
    raw_attributes = values.get("attributes")
    if isinstance(raw_attributes, dict):
        attributes.update(raw_attributes)
    elif raw_attributes not in (None, ""):
        errors.append(RowError(record.line, "attributes", "expected an object", str(raw_attributes)[:200]))
    for key, value in values.items():
        if key not in KNOWN_COLUMNS and key and value not in (None, ""):
            attributes[key] = value.strip() if isinstance(value, str) else value
    category_ref = cell(values, "category")
    category_id: int | None = None
    if category_ref:
        resolved = resolver.resolve(category_ref)
        if isinstance(resolved, str):
            errors.append(RowError(record.line, "category", resolved, category_ref[:200]))
        else:
            category_id = resolved
    if errors:
        return errors
    return ProductRow(
        line=record.line,
        sku=sku,
        title=title,
        description=cell(values, "description") if has_column["description"] else None,
        brand=cell(values, "brand") if has_column["brand"] else None,
        attributes=attributes,
        category_ref=category_ref,
        category_id=category_id,
    )


def _iter_rows(
    path: Path, file_format: str, resolver: CategoryResolver, progress: ProgressCallback, phase: str
) -> Iterator[ProductRow | list[RowError]]:
    reader = CountingReader(path)
    try:
        if file_format == "jsonl":
            records: Iterator[Record] = iter_jsonl(reader)
            has_column = {"description": True, "brand": True}
            for record in records:
                has_column = {"description": "description" in record.values, "brand": "brand" in record.values}
                yield _row_from_record(record, resolver, has_column)
                if record.line % 500 == 0:
                    progress(phase, reader.position, reader.size)
        elif file_format in ("csv", "tsv"):
            records = iter_delimited(reader, delimiter="\t" if file_format == "tsv" else ",", required=("sku", "title"))
            has_column: dict[str, bool] | None = None  # type: ignore[no-redef]
            for record in records:
                if has_column is None:
                    has_column = {"description": "description" in record.values, "brand": "brand" in record.values}
                yield _row_from_record(record, resolver, has_column)
                if record.line % 500 == 0:
                    progress(phase, reader.position, reader.size)
        else:
            raise FileFormatError("Products come as CSV, TSV or JSONL.")
    finally:
        progress(phase, reader.size, reader.size)
        reader.close()


def _chunks(
    rows: Iterator[ProductRow | list[RowError]], report: ProductImportReport, size: int
) -> Iterator[list[ProductRow]]:
    """Valid rows in chunks, duplicates of a SKU earlier in the file reported as errors."""
    first_line: dict[str, int] = {}
    chunk: list[ProductRow] = []
    for row in rows:
        report.rows += 1
        if isinstance(row, list):
            report.invalid += 1
            for error in row:
                report.add_error(error)
            continue
        if row.sku in first_line:
            report.invalid += 1
            report.add_error(RowError(row.line, "sku", f"duplicate sku, first on line {first_line[row.sku]}", row.sku))
            continue
        first_line[row.sku] = row.line
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def product_import(
    *,
    path: Path,
    file_format: str | None = None,
    actor: User | None = None,
    batch: uuid.UUID | None = None,
    dry_run: bool = False,
    keep_valid: bool = False,
    create_categories: bool = False,
    progress: ProgressCallback = no_progress,
    resume: WrittenSoFar | None = None,
    on_chunk_written: Callable[[int, ProductImportReport], None] | None = None,
) -> ProductImportReport:
    """Upsert products by SKU from a CSV/TSV/JSONL file, streamed twice: validate everything, then write.

    Nothing is written when any row is invalid, unless keep_valid. A re-import changes only what changed; a category
    that a person verified is never overwritten by an import (counted as kept_verified instead).

    Chunks are written in transactions of their own; on_chunk_written(n, report) runs inside each (n = chunks
    written so far, 0 after the new categories), so the caller can record the counts with the rows they describe.
    resume skips the chunks an interrupted run wrote and starts from its counts.
    """
    file_format = file_format or guess_format(path.name)
    chunk_size = settings.CATALOG_IMPORT_CHUNK_SIZE
    resolver = CategoryResolver(create_missing=create_categories)
    validation = ProductImportReport(dry_run=dry_run)
    for _ in _chunks(_iter_rows(path, file_format, resolver, progress, "validating"), validation, chunk_size):
        pass
    if validation.error_count and not keep_valid:
        return validation
    done = resume or WrittenSoFar()
    report = ProductImportReport(
        dry_run=dry_run,
        created=done.created,
        updated=done.updated,
        unchanged=done.unchanged,
        kept_verified=done.kept_verified,
        categories_created=done.categories_created,
    )
    batch = batch or uuid.uuid4()
    if dry_run:
        report.categories_created = len(resolver.to_create)
    else:
        with transaction.atomic():
            report.categories_created += resolver.create_pending()
            if on_chunk_written and not done.chunks:
                on_chunk_written(0, report)
    rows = _chunks(_iter_rows(path, file_format, resolver, progress, "writing"), report, chunk_size)
    for number, chunk in enumerate(rows, start=1):
        if number <= done.chunks:
            continue  # written before the worker was lost; the rows are still read, for the report's row counts
        with transaction.atomic():
            _write_chunk(chunk, report, actor=actor, batch=batch, dry_run=dry_run, resolver=resolver)
            if on_chunk_written:
                on_chunk_written(number, report)
    report.written = not dry_run
    return report


def _write_chunk(
    rows: list[ProductRow],
    report: ProductImportReport,
    *,
    actor: User | None,
    batch: uuid.UUID,
    dry_run: bool,
    resolver: CategoryResolver,
) -> None:
    now = timezone.now()
    actor_id = actor.pk if actor is not None else None
    existing = {
        p.sku: p
        for p in Product.objects.filter(sku__in=[r.sku for r in rows]).only(
            "id",
            "sku",
            "title",
            "description",
            "brand",
            "attributes",
            "category_id",
            "is_verified",
            "version",
            "category_source",
            "category_set_by_id",
            "category_set_at",
        )
    }
    new: list[Product] = []
    changed: list[Product] = []
    changes: list[CategoryChange] = []
    new_categories: dict[str, int] = {}
    for row in rows:
        category_id = row.category_id
        if row.category_ref and category_id is None:
            # Created by create_pending() after validation.
            resolved = resolver.resolve(row.category_ref)
            category_id = resolved if isinstance(resolved, int) else None
        product = existing.get(row.sku)
        if product is None:
            product = Product(
                import_batch=batch,
                sku=row.sku,
                title=row.title,
                description=row.description or "",
                brand=row.brand or "",
                attributes=row.attributes,
                category_id=category_id,
                category_source=CategorySource.IMPORT if category_id else "",
                category_set_by_id=actor_id if category_id else None,
                category_set_at=now if category_id else None,
            )
            new.append(product)
            if category_id:
                new_categories[row.sku] = category_id
            continue
        dirty = False
        for name, value in (("title", row.title), ("description", row.description), ("brand", row.brand)):
            if value is not None and getattr(product, name) != value:
                setattr(product, name, value)
                dirty = True
        merged = {**product.attributes, **row.attributes}
        if merged != product.attributes:
            product.attributes = merged
            dirty = True
        if category_id and category_id != product.category_id:
            if product.is_verified:
                report.kept_verified += 1
            else:
                changes.append(
                    CategoryChange(
                        product_id=product.pk,
                        from_category_id=product.category_id,
                        from_source=product.category_source,
                        to_category_id=category_id,
                        source=CategorySource.IMPORT,
                        actor_id=actor_id,
                        batch=batch,
                    )
                )
                product.category_id = category_id
                product.category_source = CategorySource.IMPORT
                product.category_set_by_id = actor_id
                product.category_set_at = now
                dirty = True
        if dirty:
            product.version += 1
            product.updated_at = now
            product.import_batch = batch
            changed.append(product)
        else:
            report.unchanged += 1
    report.created += len(new)
    report.updated += len(changed)
    if dry_run:
        return
    if new:
        Product.objects.bulk_create(new)
        changes.extend(
            CategoryChange(
                product_id=p.pk,
                from_category_id=None,
                to_category_id=p.category_id,
                source=CategorySource.IMPORT,
                actor_id=actor_id,
                batch=batch,
            )
            for p in new
            if p.category_id
        )
    if changed:
        # One INSERT ... ON CONFLICT DO UPDATE: several times faster than bulk_update's CASE WHEN on PostgreSQL.
        Product.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["sku"],
            update_fields=[
                "title",
                "description",
                "brand",
                "attributes",
                "category",
                "category_source",
                "category_set_by",
                "category_set_at",
                "version",
                "updated_at",
                "import_batch",
            ],
        )
    if changes:
        CategoryChange.objects.bulk_create(changes)


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
    return product
