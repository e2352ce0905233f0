"""Printing an import report the same way for every import command."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError


def print_report(command: BaseCommand, report: Any, *, label: str) -> None:
    counts = ", ".join(
        f"{name.replace('_', ' ')} {getattr(report, name)}"
        for name in (
            "rows",
            "created",
            "updated",
            "unchanged",
            "kept_verified",
            "archived",
            "categories_created",
            "invalid",
        )
        if hasattr(report, name)
    )
    prefix = "Dry run (nothing written): " if report.dry_run else ""
    command.stdout.write(f"{prefix}{label}: {counts}")
    for error in report.errors[:50]:
        value = f" [{error.value}]" if error.value else ""
        command.stderr.write(f"  line {error.line}: {error.field or '-'}: {error.reason}{value}")
    total = getattr(report, "error_count", len(report.errors))
    if total > 50:
        command.stderr.write(f"  ... and {total - 50} more")
    if report.errors and not report.written and not report.dry_run:
        raise CommandError(f"{report.invalid} invalid row(s): nothing was written. Fix them, or pass --keep-valid.")
    if report.errors and report.dry_run:
        raise CommandError(f"{report.invalid} invalid row(s).")
