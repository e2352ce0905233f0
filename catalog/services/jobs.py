"""Import jobs: an uploaded file becomes an ImportJob row, a worker runs it and reports progress there."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from catalog.imports.products import ProductImportReport, WrittenSoFar, product_import
from catalog.imports.reading import FORMATS, FileFormatError, guess_format
from catalog.models import ImportJob, ImportKind, ImportRowError
from catalog.services.taxonomy import LANGUAGES, TaxonomyReport, taxonomy_import
from core.broker import broker_check
from core.errors import ApplicationError
from core.jobs import JobCancelled, JobLost, JobRun, describe_failure, job_cancel, job_claim, job_enqueue_on_commit
from core.models import JobStatus
from core.tasks import RETRYABLE

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 2 * 1024**3
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
    broker_check()  # before anything is recorded: a clear 503 instead of a job that never starts
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
        job_enqueue_on_commit(job, lambda: import_job_enqueue(job.pk))
    return job


def import_job_run(*, job_id: int) -> None:
    """Run the import on this worker under the job lifecycle (core/jobs.py). A redelivered or re-sent task whose
    first worker was lost resumes: the chunks it wrote are skipped, the counts go on from what they saved."""
    run = job_claim(ImportJob, job_id)
    if run is None:
        return
    job = run.job
    assert isinstance(job, ImportJob)

    def progress(phase: str, done: int, total: int) -> None:
        run.beat(force=phase != job.phase, phase=phase, bytes_done=done, bytes_total=total)
        job.phase = phase

    def chunk_written(number: int, report: ProductImportReport) -> None:
        # In the chunk's transaction: the counts are saved with the rows they count, or not at all.
        run.beat(chunks_written=number, **_counts(report))

    options = job.options
    path = Path(job.file.path)
    report: ProductImportReport | TaxonomyReport
    try:
        if job.kind == ImportKind.PRODUCTS:
            resume = None
            if job.chunks_written or job.categories_created:
                resume = WrittenSoFar(
                    chunks=job.chunks_written,
                    created=job.rows_created,
                    updated=job.rows_updated,
                    unchanged=job.rows_unchanged,
                    kept_verified=job.rows_kept_verified,
                    categories_created=job.categories_created,
                )
                logger.info("import job %s resumes after chunk %s", job.pk, job.chunks_written)
            report = product_import(
                path=path,
                file_format=job.file_format,
                actor=job.created_by,
                batch=job.batch,
                dry_run=bool(options.get("dry_run")),
                keep_valid=bool(options.get("keep_valid")),
                create_categories=bool(options.get("create_categories")),
                progress=progress,
                resume=resume,
                on_chunk_written=chunk_written,
            )
        else:
            # One transaction: a lost worker leaves nothing, and the next delivery imports the file again.
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
    except JobLost:
        logger.warning("import job %s was taken over by another worker; this one stops", job.pk)
        return
    except JobCancelled:
        job.refresh_from_db()
        written = job.rows_created + job.rows_updated + job.rows_unchanged
        message = (
            f"Cancelled while writing: the first {written} valid row(s) were imported, the rest were not. "
            "Importing the same file again completes it (rows already there are left unchanged)."
            if job.chunks_written
            else "Cancelled before anything was written."
        )
        run.finish(JobStatus.CANCELLED, error="Cancelled.", message=message, written=bool(job.chunks_written))
        return
    except ApplicationError as exc:
        run.finish(JobStatus.FAILED, error=exc.message, message=exc.message)
        return
    except RETRYABLE:
        raise  # the database went away: the task's retry resumes after the chunks written
    except Exception as exc:
        logger.exception("import job %s failed", job.pk)
        message = describe_failure(exc, what="The import")
        run.finish(JobStatus.FAILED, error=message, message=message)
        raise
    _finish_with_report(run, report)


def _counts(report: ProductImportReport | TaxonomyReport) -> dict[str, Any]:
    """The report's counts as the job's columns (a taxonomy import keeps no verified labels, creates no category
    by name)."""
    return {
        "rows_created": report.created,
        "rows_updated": report.updated,
        "rows_unchanged": report.unchanged,
        "rows_kept_verified": getattr(report, "kept_verified", 0),
        "categories_created": getattr(report, "categories_created", 0),
    }


def _finish_with_report(run: JobRun, report: ProductImportReport | TaxonomyReport) -> None:
    job = run.job
    assert isinstance(job, ImportJob)
    if report.written and not report.errors:
        message = ""
    elif report.written:
        message = f"Imported the valid rows; {report.invalid} invalid row(s) were left out."
    elif report.dry_run and not report.errors:
        message = "Dry run: nothing was written."
    else:
        message = f"{report.invalid} invalid row(s): nothing was written. Fix them and import again."
    failed = bool(report.errors and not report.written)
    with transaction.atomic():
        finished = run.finish(
            JobStatus.FAILED if failed else JobStatus.SUCCEEDED,
            error=message if failed else "",
            message=message,
            rows_seen=report.rows,
            rows_invalid=report.invalid,
            written=report.written,
            **_counts(report),
        )
        if not finished:
            return
        ImportRowError.objects.filter(job=job).delete()
        ImportRowError.objects.bulk_create(
            ImportRowError(job=job, line=e.line, field=e.field[:100], reason=e.reason[:500], value=e.value[:200])
            for e in report.errors
        )


def import_job_cancel(*, job_id: int) -> ImportJob:
    return job_cancel(ImportJob, job_id)


def import_job_enqueue(job_id: int) -> None:
    from catalog.tasks import import_job_run_task

    import_job_run_task.delay(job_id)
