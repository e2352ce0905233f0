"""The broker down when a user starts a job: a clear 503 with the reason, and nothing recorded as started."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from catalog.models import ImportJob
from mlcore.models import LabelAudit, ModelVersion, RescoreJob, TrainingRun


@pytest.fixture
def broker_down(settings):
    # A port nothing listens on: the connection is refused at once.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def _assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["code"] == "broker_unavailable"
    assert "nothing was recorded" in body["detail"]


def test_training_start_answers_503_and_records_nothing(broker_down, ml_settings, labelled_catalog, admin_api):
    _assert_unavailable(admin_api.post("/api/v1/training-runs/", {"epochs": 1}, format="json"))
    assert not TrainingRun.objects.exists()
    assert not ModelVersion.objects.exists()


def test_an_import_answers_503_and_records_nothing(broker_down, admin_api):
    upload = SimpleUploadedFile("p.csv", b"sku,title\nA1,Lamp\n")
    _assert_unavailable(admin_api.post("/api/v1/imports/", {"kind": "products", "file": upload}))
    assert not ImportJob.objects.exists()


def test_rescoring_and_label_checks_answer_503_and_record_nothing(broker_down, admin_api, db):
    _assert_unavailable(admin_api.post("/api/v1/rescore-jobs/"))
    _assert_unavailable(admin_api.post("/api/v1/label-audits/"))
    assert not RescoreJob.objects.exists()
    assert not LabelAudit.objects.exists()


def test_the_import_page_says_why(broker_down, manager_client):
    upload = SimpleUploadedFile("p.csv", b"sku,title\nA1,Lamp\n")
    response = manager_client.post("/catalog/imports/", {"kind": "products", "file": upload, "language": "en"})
    assert "does not answer" in response.content.decode()
    assert not ImportJob.objects.exists()
