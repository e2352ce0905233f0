from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from mlcore.models import ModelVersion, ModelVersionStatus
from mlcore.services.rescoring import rescore_job_run_here, rescore_job_start


class Command(BaseCommand):
    help = "Write every product's predictions from a model version (default: the active one)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # `--version` names the model version here, as users expect; Django's own --version gives way.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--version", type=int, help="version number (v3 -> 3); default: the active version")
        parser.add_argument("--background", action="store_true", help="queue the chunks for the ml worker")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["version"] is not None:
            version = ModelVersion.objects.filter(number=options["version"]).first()
        else:
            version = ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).first()
        if version is None:
            raise CommandError("No such model version (train one first: python manage.py train).")
        if not version.artifact_path:
            raise CommandError(f"v{version.number} has no saved model ({version.status}).")
        run_in_background(self, version_id=version.pk, background=options["background"], label=version.label)


def run_in_background(command: BaseCommand, *, version_id: int | None, background: bool, label: str) -> None:
    try:
        job = rescore_job_start(version_id=version_id, enqueue=background)
    except ApplicationError as exc:
        raise CommandError(exc.message) from exc
    if background:
        command.stdout.write(f"Queued re-scoring job #{job.pk} ({label}): {job.chunks_total} chunks.")
        return
    command.stdout.write(f"Re-scoring {job.products_total} products with {label} (job #{job.pk})...")
    job = rescore_job_run_here(job_id=job.pk)
    command.stdout.write(command.style.SUCCESS(f"Done: {job.products_done} products scored ({label})."))
