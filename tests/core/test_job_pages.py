"""Every kind of job can be cancelled from its page, and the page says which worker runs it and why it failed."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from catalog.models import ImportJob
from core.jobs import claimant_here
from core.models import JobStatus
from mlcore.models import LabelAudit, ModelVersion, RescoreJob, TrainingRun
from tests.factories import UserFactory


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(UserFactory(username="boss", role=Role.ADMIN))
    return client


def test_the_models_page_cancels_rescoring_and_label_checks(admin_client):
    job = RescoreJob.objects.create(status=JobStatus.RUNNING)
    audit = LabelAudit.objects.create()
    page = admin_client.get(reverse("mlcore:dashboard")).content.decode()
    assert reverse("mlcore:job-cancel", args=["rescore-jobs", job.pk]) in page
    assert reverse("mlcore:job-cancel", args=["label-audits", audit.pk]) in page

    admin_client.post(reverse("mlcore:job-cancel", args=["rescore-jobs", job.pk]))
    admin_client.post(reverse("mlcore:job-cancel", args=["label-audits", audit.pk]))
    job.refresh_from_db()
    audit.refresh_from_db()
    assert (job.status, audit.status) == (JobStatus.CANCELLED, JobStatus.CANCELLED)
    assert admin_client.post(reverse("mlcore:job-cancel", args=["dinners", job.pk])).status_code == 404
    again = admin_client.post(reverse("mlcore:job-cancel", args=["rescore-jobs", job.pk]), follow=True).content.decode()
    assert "has already ended" in again


def test_the_models_page_shows_the_worker_and_the_attempt(admin_client):
    version = ModelVersion.objects.create(number=1, base_model="x")
    TrainingRun.objects.create(
        model_version=version,
        status=JobStatus.RUNNING,
        claimant={**claimant_here(), "node": "trainer@gpu1", "pid": 42},
        attempts=2,
    )
    page = admin_client.get(reverse("mlcore:dashboard")).content.decode()
    assert "on trainer@gpu1 (pid 42)" in page
    assert "attempt 2: resumed after a lost worker" in page


def test_managers_see_but_cannot_cancel_model_jobs(manager_client):
    job = RescoreJob.objects.create(status=JobStatus.RUNNING)
    assert (
        reverse("mlcore:job-cancel", args=["rescore-jobs", job.pk])
        not in manager_client.get(reverse("mlcore:dashboard")).content.decode()
    )
    assert manager_client.post(reverse("mlcore:job-cancel", args=["rescore-jobs", job.pk])).status_code == 403
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


def test_the_import_page_cancels_a_queued_import(manager_client):
    job = ImportJob.objects.create(kind="products", file="imports/x.csv", original_name="x.csv", file_format="csv")
    page = manager_client.get(reverse("catalog:import-detail", args=[job.pk])).content.decode()
    assert reverse("catalog:import-cancel", args=[job.pk]) in page
    manager_client.post(reverse("catalog:import-cancel", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert (
        reverse("catalog:import-cancel", args=[job.pk])
        not in manager_client.get(reverse("catalog:import-detail", args=[job.pk])).content.decode()
    )


def test_a_label_check_started_while_the_broker_is_down_says_so(admin_client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = admin_client.post(reverse("mlcore:label-audit"), follow=True)
    assert response.status_code == 200
    assert "does not answer" in response.content.decode()
    assert not LabelAudit.objects.exists()
