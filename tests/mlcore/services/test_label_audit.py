from __future__ import annotations

import pytest

from catalog.models import Product
from core.models import JobStatus
from mlcore.models import LabelAudit, LabelIssue
from mlcore.services.label_audit import label_audit_execute, label_audit_start
from mlcore.signals import label_issues_found
from tests.factories import ProductFactory, verified_product


@pytest.fixture
def mislabelled_catalog(small_tree, manager):
    """Ten dishwashers and ten phones, verified; one more dishwasher verified as a phone."""

    def verified(sku: str, title: str, category) -> Product:
        return verified_product(category, manager, sku=sku, title=title, brand="", description="")

    for i in range(10):
        verified(f"D{i}", "dishwasher", small_tree["dish"])
        verified(f"P{i}", "smartphone", small_tree["phones"])
    wrong = verified("X1", "dishwasher", small_tree["phones"])
    ProductFactory(sku="U1", title="unlabelled dishwasher")  # not verified: never audited
    return {"wrong": wrong, **small_tree}


def test_audit_flags_the_mislabelled_product_and_proposes_its_class(ml_settings, mislabelled_catalog, manager):
    received = []

    def listener(sender, audit, **kwargs):
        received.append(audit.pk)

    label_issues_found.connect(listener)
    try:
        audit = label_audit_execute(audit_id=label_audit_start(user=manager, enqueue=False).pk)
    finally:
        label_issues_found.disconnect(listener)

    assert audit.status == JobStatus.SUCCEEDED
    assert (audit.labels_checked, audit.labels_skipped, audit.issues_found) == (21, 0, 1)
    issue = LabelIssue.objects.get(audit=audit)
    assert issue.product == mislabelled_catalog["wrong"]
    assert issue.given_category == mislabelled_catalog["phones"]
    assert issue.suggested_category == mislabelled_catalog["dish"]
    assert issue.given_probability < 0.5 < issue.suggested_probability
    assert received == [audit.pk]
    # The audit only reports: the label of record is untouched.
    wrong = Product.objects.get(pk=mislabelled_catalog["wrong"].pk)
    assert (wrong.category_id, wrong.is_verified) == (mislabelled_catalog["phones"].pk, True)


def test_a_second_start_returns_the_pending_audit_and_a_rerun_writes_nothing_twice(
    ml_settings, mislabelled_catalog, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = label_audit_start(user=manager)
        assert label_audit_start(user=None) == first
    assert len(callbacks) == 1  # one task queued
    # A worker killed mid-audit: the task is redelivered while the row says running; it starts over cleanly.
    LabelAudit.objects.filter(pk=first.pk).update(status=JobStatus.RUNNING)
    label_audit_execute(audit_id=first.pk)
    label_audit_execute(audit_id=first.pk)  # a late duplicate delivery finds it finished
    assert LabelIssue.objects.filter(audit=first).count() == 1
    assert label_audit_start(user=None) != first  # finished: a new start makes a new audit


def test_small_classes_sit_out(ml_settings, small_tree, manager):
    for i in range(3):
        verified_product(small_tree["fridge"], manager, sku=f"F{i}", title="fridge")
    audit = label_audit_execute(audit_id=label_audit_start(user=manager, enqueue=False).pk)
    assert audit.status == JobStatus.SUCCEEDED
    assert (audit.labels_checked, audit.labels_skipped, audit.issues_found) == (0, 3, 0)


def test_two_starts_at_the_same_moment_queue_one_audit(ml_settings, mislabelled_catalog, monkeypatch):
    from django.db.models import QuerySet

    first = label_audit_start(user=None, enqueue=False)
    # The second start looked for a pending audit before the first had committed, and found none.
    monkeypatch.setattr(QuerySet, "first", lambda self: None)
    second = label_audit_start(user=None, enqueue=False)
    monkeypatch.undo()
    assert second == first
    assert LabelAudit.objects.count() == 1
