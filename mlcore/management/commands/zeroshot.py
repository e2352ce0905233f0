from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mlcore.management.commands.rescore import run_in_background


class Command(BaseCommand):
    help = "Zero-shot suggestions for every product from the pretrained encoder (before any model version exists)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--background", action="store_true", help="queue the chunks for the ml worker")
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="do nothing when every product already has a zero-shot suggestion (make demo)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_missing"]:
            from catalog.models import Product
            from mlcore.models import Prediction

            if Prediction.objects.filter(model_version=None).count() >= Product.objects.count():
                self.stdout.write("Every product has zero-shot suggestions already.")
                return
        run_in_background(self, version_id=None, background=options["background"], label="zero-shot")
