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
            from mlcore.services.scoring import scoring_backlog_add

            scored = Prediction.objects.filter(model_version=None).count()
            if scored >= Product.objects.count():
                self.stdout.write("Every product has zero-shot suggestions already.")
                return
            if scored:
                # A few products added since (through the API, an import): score those, not the whole catalog again.
                missing = Product.objects.exclude(
                    pk__in=Prediction.objects.filter(model_version=None).values("product_id")
                ).values_list("pk", flat=True)
                queued = scoring_backlog_add(product_ids=list(missing))
                self.stdout.write(f"{queued} product(s) without suggestions queued for scoring.")
                return
        run_in_background(self, version_id=None, background=options["background"], label="zero-shot")
