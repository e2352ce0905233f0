from __future__ import annotations

from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from catalog.models import Product
from mlcore.models import TrainingRun
from mlcore.services.rescoring import rescore_job_run_here, rescore_job_start
from tests.factories import UserFactory


def test_dashboard_is_for_managers_and_admins(annotator_client, manager_client, db):
    assert annotator_client.get(reverse("mlcore:dashboard")).status_code == 403
    page = manager_client.get(reverse("mlcore:dashboard")).content.decode()
    assert "No model version yet" in page
    assert "Train a new version" not in page  # managers watch; admins start


def test_admin_starts_training_from_the_dashboard_and_sees_it_live(
    ml_settings, labelled_catalog, django_capture_on_commit_callbacks
):
    client = Client()
    client.force_login(UserFactory(username="boss", role=Role.ADMIN))
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("mlcore:training-start"), {"method": "full", "epochs": 2, "learning_rate": 0.001}, follow=True
        )
    assert "Training run #" in response.content.decode()
    assert TrainingRun.objects.get().status == "queued"
    live = client.get(reverse("mlcore:dashboard"), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in live  # polls while the run is queued or running
    with django_capture_on_commit_callbacks(execute=False):
        again = client.post(
            reverse("mlcore:training-start"), {"method": "full", "epochs": 2, "learning_rate": 0.001}, follow=True
        )
    assert "already in progress" in again.content.decode()


def test_product_page_composes_the_suggestions_partial(ml_settings, labelled_catalog, annotator_client):
    rescore_job_run_here(job_id=rescore_job_start(version_id=None, enqueue=False).pk)
    product = Product.objects.get(sku="U002")
    page = annotator_client.get(reverse("catalog:product-detail", args=[product.pk])).content.decode()
    assert reverse("mlcore:product-suggestions", args=[product.pk]) in page
    partial = annotator_client.get(reverse("mlcore:product-suggestions", args=[product.pk])).content.decode()
    assert "zero-shot" in partial
    assert "Home &amp; Garden" in partial or "Electronics" in partial


def test_admin_starts_a_label_check_managers_see_its_findings(
    ml_settings, labelled_catalog, manager_client, django_capture_on_commit_callbacks
):
    assert manager_client.post(reverse("mlcore:label-audit")).status_code == 403
    assert "Check verified labels now" not in manager_client.get(reverse("mlcore:dashboard")).content.decode()
    admin = Client()
    admin.force_login(UserFactory(username="boss", role=Role.ADMIN))
    with django_capture_on_commit_callbacks(execute=False):
        response = admin.post(reverse("mlcore:label-audit"), follow=True)
    assert "Label check #" in response.content.decode()
    from mlcore.models import LabelAudit
    from mlcore.services.label_audit import label_audit_execute

    label_audit_execute(audit_id=LabelAudit.objects.get().pk)
    page = manager_client.get(reverse("mlcore:dashboard")).content.decode()
    assert "Label checks" in page
    assert "succeeded" in page
