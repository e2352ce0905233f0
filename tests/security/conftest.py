"""A small world with one object of every kind the URLs name, and a user of every role (two annotators: whose
object is whose matters)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from accounts.roles import Role
from catalog.models import ImportJob, ImportKind
from labeling.models import Annotation, AnnotationKind, LabelingQueue, ReviewItem, ReviewReason
from mlcore.models import LabelAudit, RescoreJob, TrainingRun
from tests.factories import UserFactory
from tests.labeling.services.test_reclassification import _build, _imported, _predict, _version


@dataclass
class World:
    ids: dict[str, int]
    users: dict[str, Any]

    def client(self, role: str) -> Client:
        client = Client()
        if role != "anonymous":
            client.force_login(self.users[role])
        return client


@pytest.fixture
def world(small_tree, django_capture_on_commit_callbacks) -> World:
    users = {
        "annotator": UserFactory(username="ann", role=Role.ANNOTATOR),
        "other_annotator": UserFactory(username="ann2", role=Role.ANNOTATOR),
        "manager": UserFactory(username="mgr", role=Role.CATALOG_MANAGER),
        "admin": UserFactory(username="adm", role=Role.ADMIN),
    }
    version = _version()
    product = _imported(small_tree, "phones", title="dishwasher 1")
    _predict(version, product, [(small_tree["dish"], 0.95)])
    batch = _build(version, django_capture_on_commit_callbacks)
    run = TrainingRun.objects.create(model_version=version)
    rescore = RescoreJob.objects.create(model_version=version)
    audit = LabelAudit.objects.create(created_by=users["admin"])
    imported = ImportJob.objects.create(
        kind=ImportKind.PRODUCTS,
        file="imports/x.csv",
        original_name="x.csv",
        file_format="csv",
        created_by=users["manager"],
    )
    other = Annotation.objects.create(
        product=product, annotator=users["other_annotator"], kind=AnnotationKind.LABEL, category=small_tree["dish"]
    )
    review = ReviewItem.objects.create(product=product, reason=ReviewReason.DISAGREEMENT)
    queue = LabelingQueue.objects.create(name="Kitchen", category=small_tree["kitchen"], created_by=users["manager"])
    ids = {
        "product": product.pk,
        "category": small_tree["dish"].pk,
        "version": version.pk,
        "batch": batch.pk,
        "run": run.pk,
        "rescore": rescore.pk,
        "label_audit": audit.pk,
        "import": imported.pk,
        "annotation": other.pk,
        "review": review.pk,
        "queue": queue.pk,
    }
    return World(ids=ids, users=users)


ROLES = ("anonymous", "annotator", "manager", "admin")
