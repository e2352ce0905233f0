from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from catalog import selectors
from catalog.services.exports import products_export_csv, products_export_jsonl


class Command(BaseCommand):
    help = "Export products (with category path, source and verified flag) as CSV or JSONL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument("--output", "-o", type=Path, help="default: standard output")
        parser.add_argument("--category", type=int, help="only this category's subtree (category id)")
        parser.add_argument("--verified", action="store_true", help="only verified products")

    def handle(self, *args: Any, **options: Any) -> None:
        filters = selectors.ProductFilters(
            category_id=options["category"], verified=True if options["verified"] else None
        )
        products = selectors.product_list(filters=filters)
        chunks = (products_export_jsonl if options["format"] == "jsonl" else products_export_csv)(products=products)
        output = options["output"]
        target = output.open("w", encoding="utf-8", newline="") if output else contextlib.nullcontext(sys.stdout)
        with target as handle:
            for chunk in chunks:
                handle.write(chunk)
