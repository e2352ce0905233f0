from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.models import JobStatus
from mlcore.models import LabelIssue
from mlcore.services.label_audit import label_audit_execute, label_audit_start


class Command(BaseCommand):
    help = (
        "Look for likely errors among the verified labels (confident learning on cross-validated probabilities) "
        "and send them to review. Changes no label."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--background", action="store_true", help="queue it for the ml worker and return")
        parser.add_argument("--show", type=int, default=10, help="print this many of the likeliest errors")

    def handle(self, *args: Any, **options: Any) -> None:
        audit = label_audit_start(user=None, enqueue=options["background"])
        if options["background"]:
            self.stdout.write(f"Queued label check #{audit.pk}.")
            return
        self.stdout.write(f"Checking verified labels (label check #{audit.pk}) here...")
        done = label_audit_execute(audit_id=audit.pk)
        if done is None:
            raise CommandError(f"Label check #{audit.pk} is being run by a worker; see the Models page.")
        audit = done
        if audit.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Label check #{audit.pk} {audit.status}: {audit.error}")
        agreement = f"{audit.agreement:.3f}" if audit.agreement is not None else "-"
        self.stdout.write(
            self.style.SUCCESS(
                f"{audit.labels_checked} labels checked ({audit.labels_skipped} in categories too small to check), "
                f"held-out agreement {agreement}: {audit.issues_found} likely error(s) sent to review."
            )
        )
        issues = LabelIssue.objects.filter(audit=audit).select_related(
            "product", "given_category", "suggested_category"
        )
        for issue in issues[: options["show"]]:
            self.stdout.write(
                f"  {issue.product.sku}: {issue.given_category.full_path_en} ({issue.given_probability:.0%}) -> "
                f"{issue.suggested_category.full_path_en} ({issue.suggested_probability:.0%})"
            )
