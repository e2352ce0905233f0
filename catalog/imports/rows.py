"""A file's records as product rows: columns, limits, and the row-level errors a report shows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.imports.categories import CategoryResolver
from catalog.imports.reading import (
    CountingReader,
    FileFormatError,
    ProgressCallback,
    Record,
    RowError,
    cell,
    iter_delimited,
    iter_jsonl,
)

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


def row_from_record(
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


def iter_rows(
    path: Path, file_format: str, resolver: CategoryResolver, progress: ProgressCallback, phase: str
) -> Iterator[ProductRow | list[RowError]]:
    reader = CountingReader(path)
    try:
        if file_format == "jsonl":
            records: Iterator[Record] = iter_jsonl(reader)
            has_column = {"description": True, "brand": True}
            for record in records:
                has_column = {"description": "description" in record.values, "brand": "brand" in record.values}
                yield row_from_record(record, resolver, has_column)
                if record.line % 500 == 0:
                    progress(phase, reader.position, reader.size)
        elif file_format in ("csv", "tsv"):
            records = iter_delimited(reader, delimiter="\t" if file_format == "tsv" else ",", required=("sku", "title"))
            has_column: dict[str, bool] | None = None  # type: ignore[no-redef]
            for record in records:
                if has_column is None:
                    has_column = {"description": "description" in record.values, "brand": "brand" in record.values}
                yield row_from_record(record, resolver, has_column)
                if record.line % 500 == 0:
                    progress(phase, reader.position, reader.size)
        else:
            raise FileFormatError("Products come as CSV, TSV or JSONL.")
    finally:
        progress(phase, reader.size, reader.size)
        reader.close()
