from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from mlcore.models import TrainingRun
from mlcore.services.training import training_run_execute, training_run_start


class Command(BaseCommand):
    help = "Fine-tune a new model version on every verified label, evaluate it, and activate it if not worse."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-model", default="", help="a local Hugging Face folder (default: packaged MiniLM)")
        parser.add_argument("--method", choices=["full", "lora"], default="full")
        parser.add_argument("--epochs", type=float, default=3.0)
        parser.add_argument("--lr", type=float, default=5e-5, help="learning rate")
        parser.add_argument("--max-length", type=int, default=None, help="tokens per product (default 64)")
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--background", action="store_true", help="queue it for the ml worker and return")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = training_run_start(
                user=None,
                method=options["method"],
                base_model=options["base_model"],
                any_folder=True,
                epochs=options["epochs"],
                learning_rate=options["lr"],
                max_length=options["max_length"],
                batch_size=options["batch_size"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        version = run.model_version
        if options["background"]:
            self.stdout.write(f"Queued training run #{run.pk} for v{version.number}.")
            return
        self.stdout.write(f"Training v{version.number} (run #{run.pk}) here; this can take a while on a CPU.")
        training_run_execute(run_id=run.pk)
        run = TrainingRun.objects.select_related("model_version").get(pk=run.pk)
        if not run.is_finished:
            # A `training` worker took the run first (its task was queued too): follow it there.
            self.stdout.write(f"Training run #{run.pk} runs on {run.claimed_by}; waiting for it.")
            while not run.is_finished:
                time.sleep(2)
                run.refresh_from_db()
            run = TrainingRun.objects.select_related("model_version").get(pk=run.pk)
        version = run.model_version
        if run.status != "succeeded":
            raise CommandError(f"Training run #{run.pk} {run.status}: {run.error}")
        test = version.metrics.get("test", {})
        self.stdout.write(
            self.style.SUCCESS(
                f"v{version.number}: {version.status}. Test set ({test.get('n', 0)} items): accuracy "
                f"{test.get('accuracy', 0):.3f}, macro-F1 {test.get('macro_f1', 0):.3f}, weighted F1 "
                f"{test.get('weighted_f1', 0):.3f}. {version.activation_note}"
            )
        )
