"""Product export as CSV or JSONL, streamed so that a 1M-product catalog never sits in memory."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.db.models import QuerySet

from catalog.models import Product

EXPORT_COLUMNS = (
    "sku",
    "title",
    "description",
    "brand",
    "category_id",
    "category_path",
    "category_source",
    "verified",
    "attributes",
)
# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection, OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _rows(products: QuerySet[Product]) -> Iterator[dict[str, object]]:
    for product in products.select_related("category").order_by("id").iterator(chunk_size=2000):
        category = product.category
        yield {
            "sku": product.sku,
            "title": product.title,
            "description": product.description,
            "brand": product.brand,
            "category_id": category.external_id if category else "",
            "category_path": category.full_path_en if category else "",
            "category_source": product.category_source,
            "verified": product.is_verified,
            "attributes": product.attributes,
        }


def products_export_csv(*, products: QuerySet[Product]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    writer.writerow(EXPORT_COLUMNS)
    yield flush()
    for row in _rows(products):
        row["verified"] = "true" if row["verified"] else "false"
        row["attributes"] = json.dumps(row["attributes"], ensure_ascii=False) if row["attributes"] else ""
        writer.writerow([neutralise(str(row[c])) for c in EXPORT_COLUMNS])
        yield flush()


def products_export_jsonl(*, products: QuerySet[Product]) -> Iterator[str]:
    # JSON has no formulas, but these files are opened in spreadsheets too: neutralise the same way.
    for row in _rows(products):
        clean = {k: neutralise(v) if isinstance(v, str) else v for k, v in row.items()}
        yield json.dumps(clean, ensure_ascii=False) + "\n"
