"""Import jobs: an uploaded file becomes an ImportJob row, a worker runs it and reports progress there."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from catalog.models import ImportJob, ImportKind, ImportRowError, ImportStatus
from catalog.services.products import ProductImportReport, product_import
from catalog.services.reading import FORMATS, FileFormatError, guess_format
from catalog.services.taxonomy import LANGUAGES, TaxonomyReport, taxonomy_import
from config.errors import ApplicationError

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 2 * 1024**3
# A job whose worker has not reported for this long is taken to be dead and may be run again.
STALE_AFTER_SECONDS = 300
PRODUCT_OPTIONS = {"dry_run", "keep_valid", "create_categories"}
TAXONOMY_OPTIONS = {"dry_run", "keep_valid", "archive_missing", "language", "release"}


def import_job_create(
    *,
    kind: str,
    upload: UploadedFile,
    user: User | None,
    file_format: str = "",
    options: dict[str, Any] | None = None,
) -> ImportJob:
    if kind not in ImportKind.values:
        raise ApplicationError(f"Unknown import kind '{kind}': use products or taxonomy.")
    name = upload.name or "upload"
    if not upload.size:
        raise FileFormatError(f"'{name}' is empty.")
    if upload.size > MAX_UPLOAD_BYTES:
        raise FileFormatError(f"'{name}' is larger than {MAX_UPLOAD_BYTES // 1024**3} GB.")
    file_format = file_format or guess_format(name)
    if file_format not in FORMATS:
        raise FileFormatError(f"Unknown format '{file_format}': use one of {', '.join(FORMATS)}.")
    allowed = PRODUCT_OPTIONS if kind == ImportKind.PRODUCTS else TAXONOMY_OPTIONS
    options = {k: v for k, v in (options or {}).items() if k in allowed}
    if options.get("language", "en") not in LANGUAGES:
        raise ApplicationError(f"Unknown language '{options['language']}'.")
    with transaction.atomic():
        job = ImportJob(
            kind=kind,
            original_name=name[:255],
            file_format=file_format,
            options=options,
            created_by=user if user and user.pk else None,
            bytes_total=upload.size,
        )
        job.file.save(f"{uuid.uuid4().hex}-{Path(name).name}"[:200], upload, save=False)
        job.save()
        from catalog.tasks import import_job_run_task

        transaction.on_commit(lambda: import_job_run_task.delay(job.pk))
    return job


def _claim(job_id: int) -> ImportJob | None:
    """Take the job for this worker, unless it is finished or another worker is alive on it (a redelivery)."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.warning("import job %s does not exist", job_id)
            return None
        if job.is_finished:
            return None
        now = timezone.now()
        if (
            job.status == ImportStatus.RUNNING
            and job.heartbeat_at
            and (now - job.heartbeat_at).total_seconds() < STALE_AFTER_SECONDS
        ):
            logger.info("import job %s is running elsewhere", job_id)
            return None
        job.status = ImportStatus.RUNNING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.save(update_fields=["status", "started_at", "heartbeat_at"])
    return job


def import_job_run(*, job_id: int) -> None:
    job = _claim(job_id)
    if job is None:
        return

    def progress(phase: str, done: int, total: int) -> None:
        ImportJob.objects.filter(pk=job.pk).update(
            phase=phase, bytes_done=done, bytes_total=total, heartbeat_at=timezone.now()
        )

    options = job.options
    path = Path(job.file.path)
    report: ProductImportReport | TaxonomyReport
    try:
        if job.kind == ImportKind.PRODUCTS:
            report = product_import(
                path=path,
                file_format=job.file_format,
                actor=job.created_by,
                batch=job.batch,
                dry_run=bool(options.get("dry_run")),
                keep_valid=bool(options.get("keep_valid")),
                create_categories=bool(options.get("create_categories")),
                progress=progress,
            )
        else:
            report = taxonomy_import(
                path=path,
                file_format=job.file_format,
                language=options.get("language", "en"),
                release=options.get("release", ""),
                dry_run=bool(options.get("dry_run")),
                keep_valid=bool(options.get("keep_valid")),
                archive_missing=bool(options.get("archive_missing")),
                progress=progress,
            )
    except ApplicationError as exc:
        _finish(job, status=ImportStatus.FAILED, message=exc.message)
        return
    except Exception as exc:
        logger.exception("import job %s failed", job.pk)
        _finish(job, status=ImportStatus.FAILED, message=f"The import stopped on an internal error: {exc}")
        raise
    _finish_with_report(job, report)


def _finish_with_report(job: ImportJob, report: ProductImportReport | TaxonomyReport) -> None:
    ImportRowError.objects.filter(job=job).delete()
    ImportRowError.objects.bulk_create(
        ImportRowError(job=job, line=e.line, field=e.field[:100], reason=e.reason[:500], value=e.value[:200])
        for e in report.errors
    )
    job.rows_seen = report.rows
    job.rows_created = report.created
    job.rows_updated = report.updated
    job.rows_unchanged = report.unchanged
    job.rows_invalid = report.invalid
    job.rows_kept_verified = getattr(report, "kept_verified", 0)
    job.written = report.written
    if report.written and not report.errors:
        message = ""
    elif report.written:
        message = f"Imported the valid rows; {report.invalid} invalid row(s) were left out."
    elif report.dry_run and not report.errors:
        message = "Dry run: nothing was written."
    else:
        message = f"{report.invalid} invalid row(s): nothing was written. Fix them and import again."
    _finish(
        job,
        status=ImportStatus.FAILED if report.errors and not report.written else ImportStatus.SUCCEEDED,
        message=message,
    )


def _finish(job: ImportJob, *, status: str, message: str) -> None:
    job.status = status
    job.message = message
    job.finished_at = timezone.now()
    job.save()
