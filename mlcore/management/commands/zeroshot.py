from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mlcore.management.commands.rescore import run_in_background


class Command(BaseCommand):
    help = "Zero-shot suggestions for every product from the pretrained encoder (before any model version exists)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--background", action="store_true", help="queue the chunks for the ml worker")

    def handle(self, *args: Any, **options: Any) -> None:
        run_in_background(self, version_id=None, background=options["background"], label="zero-shot")
