from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.management.commands._report import print_report
from catalog.services.taxonomy import taxonomy_import
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Import a category taxonomy: Shopify JSON, the flattened TSV, or a CSV (id,parent_id,name or a path column)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=["json", "tsv", "csv"], help="default: from the file name")
        parser.add_argument(
            "--language",
            default="en",
            choices=["en", "zh-hans"],
            help="zh-hans adds Chinese names to categories that exist",
        )
        parser.add_argument("--release", default="", help="taxonomy release, e.g. 2024-07")
        parser.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
        parser.add_argument("--keep-valid", action="store_true", help="write the valid rows even if some are invalid")
        parser.add_argument(
            "--archive-missing",
            action="store_true",
            help="archive categories of this release that the file no longer has",
        )

        parser.add_argument(
            "--mapping",
            type=Path,
            help="old id -> new id between releases (CSV old_id,new_id or JSON): each old category is archived and "
            "its products are proposed to move to the new one (a catalog manager applies them on /reclassify/)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        if options["mapping"] is not None and not options["mapping"].is_file():
            raise CommandError(f"No such mapping file: {options['mapping']}")
        try:
            report = taxonomy_import(
                path=path,
                file_format=options["format"],
                language=options["language"],
                release=options["release"],
                dry_run=options["dry_run"],
                keep_valid=options["keep_valid"],
                archive_missing=options["archive_missing"],
                mapping=options["mapping"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        print_report(self, report, label=f"taxonomy {path.name}")
