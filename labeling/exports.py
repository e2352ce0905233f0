"""A reclassification batch exported as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from catalog.services.exports import neutralise
from labeling.models import ReclassificationBatch
from labeling.selectors import reclassification_export_rows

EXPORT_HEADER = (
    "proposal_id",
    "sku",
    "title",
    "kind",
    "from_category_id",
    "from_category_path",
    "to_category_id",
    "to_category_path",
    "confidence",
    "crosses_vertical",
    "state",
    "decided_by",
    "decided_at",
    "confirmed_by",
    "note",
)


def reclassification_csv(*, batch: ReclassificationBatch) -> Iterator[str]:
    """A batch's proposals and decisions as CSV text, a chunk at a time (a batch can be 100k rows); cells that a
    spreadsheet would run as a formula are neutralised as in the product export."""
    rows = reclassification_export_rows(batch=batch)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_HEADER)
    for row in rows:
        writer.writerow(
            [neutralise(value) if isinstance(value, str) else ("" if value is None else value) for value in row]
        )
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
