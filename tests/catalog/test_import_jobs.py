from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import ImportJob, Product
from catalog.services.jobs import import_job_create, import_job_run
from core.models import JobStatus
from tests.factories import CategoryFactory

BROKEN = b"sku,title,category\nA1,Good one,\n,no sku,\nA3,bad cat,Nope > Nothing\nA4,x,,extra\n"


def _wait(job: ImportJob, seconds: float = 60) -> ImportJob:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job.pk} still {job.status} after {seconds}s")


@pytest.mark.slow
def test_a_real_worker_runs_an_import_and_reports_it(celery_worker, manager):
    CategoryFactory(external_id="hg", name_en="Home")
    upload = SimpleUploadedFile("offers.csv", b"sku,title,category\nX1,Fridge,hg\nX2,Lamp,\n")
    job = _wait(import_job_create(kind="products", upload=upload, user=manager))

    assert job.status == JobStatus.SUCCEEDED
    assert (job.rows_created, job.written, job.percent) == (2, True, 100)
    assert Product.objects.get(sku="X1").category.external_id == "hg"


@pytest.mark.slow
def test_a_real_worker_reports_broken_rows_and_writes_nothing(celery_worker, manager):
    job = _wait(import_job_create(kind="products", upload=SimpleUploadedFile("b.csv", BROKEN), user=manager))

    assert job.status == JobStatus.FAILED
    assert not job.written
    assert list(job.row_errors.values_list("line", "field")) == [(3, "sku"), (4, "category"), (5, "")]
    assert "nothing was written" in job.message
    assert Product.objects.count() == 0


def test_a_finished_job_is_not_run_twice(db, manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = import_job_create(kind="products", upload=SimpleUploadedFile("o.csv", b"sku,title\nQ1,x\n"), user=manager)
    import_job_run(job_id=job.pk)
    Product.objects.all().delete()
    import_job_run(job_id=job.pk)  # a redelivered task
    assert Product.objects.count() == 0


def test_a_missing_job_is_logged_not_raised(db, caplog):
    import_job_run(job_id=987654)
    assert "does not exist" in caplog.text


def test_wrong_file_type_is_refused_at_upload(db, manager):
    from catalog.imports.reading import FileFormatError

    with pytest.raises(FileFormatError, match="Cannot tell the format"):
        import_job_create(kind="products", upload=SimpleUploadedFile("o.xlsx", b"PK..."), user=manager)
    assert ImportJob.objects.count() == 0
