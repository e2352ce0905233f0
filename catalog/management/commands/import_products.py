from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.imports.products import product_import
from catalog.management.commands._report import print_report
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Import products from CSV/TSV (header: sku,title[,description,brand,category,...]) or JSONL; upsert by sku."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=["csv", "tsv", "jsonl"], help="default: from the file name")
        parser.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
        parser.add_argument("--keep-valid", action="store_true", help="write the valid rows even if some are invalid")
        parser.add_argument(
            "--create-categories",
            action="store_true",
            help="create categories named by a full path that does not exist yet",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            report = product_import(
                path=path,
                file_format=options["format"],
                dry_run=options["dry_run"],
                keep_valid=options["keep_valid"],
                create_categories=options["create_categories"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        print_report(self, report, label=f"products {path.name}")
