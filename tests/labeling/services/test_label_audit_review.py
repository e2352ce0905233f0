"""Likely label errors found by mlcore's audit reach the review queue (labeling listens to mlcore's signal)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from catalog.models import CategorySource, Product
from catalog.services.labels import product_category_set
from core.models import JobStatus
from labeling.models import ReviewItem, ReviewReason
from labeling.services.reviews import review_resolve
from mlcore.models import LabelAudit, LabelIssue
from mlcore.signals import label_issues_found
from tests.factories import verified_product


@pytest.fixture
def flagged(small_tree, manager):
    """A dishwasher verified as a phone, and an audit that says so."""
    return verified_product(small_tree["phones"], manager, sku="X1", title="Bosch dishwasher SMS4", brand="Bosch")


def _audit(product, given, suggested) -> LabelAudit:
    audit = LabelAudit.objects.create(status=JobStatus.SUCCEEDED, issues_found=1)
    LabelIssue.objects.create(
        audit=audit,
        product=product,
        given_category=given,
        suggested_category=suggested,
        given_probability=0.03,
        suggested_probability=0.94,
    )
    label_issues_found.send(sender=LabelAudit, audit=audit)
    return audit


def test_likely_label_errors_open_review_items_once(flagged, small_tree):
    _audit(flagged, small_tree["phones"], small_tree["dish"])
    _audit(flagged, small_tree["phones"], small_tree["dish"])  # the next audit agrees: still one open item

    item = ReviewItem.objects.get(product=flagged)
    assert item.reason == ReviewReason.LIKELY_LABEL_ERROR
    assert item.suggested_category == small_tree["dish"]
    assert item.note == "held-out model: 3% for the current label, 94% for Dishwashers"


def test_review_offers_the_proposal_then_the_current_label(flagged, small_tree, manager_client):
    _audit(flagged, small_tree["phones"], small_tree["dish"])

    page = manager_client.get(reverse("review")).content.decode()

    assert "likely label error" in page
    proposal, current = (
        page.index(f'data-category="{small_tree["dish"].pk}"'),
        page.index(f'data-category="{small_tree["phones"].pk}"'),
    )
    assert proposal < current  # 1 takes the proposal, 2 keeps the current label
    assert "label check" in page
    assert "current label" in page


def test_a_confirmed_label_is_not_asked_about_again(flagged, small_tree, manager):
    _audit(flagged, small_tree["phones"], small_tree["dish"])
    item = ReviewItem.objects.get(product=flagged)
    # The reviewer knows better (say, a phone named after a dishwasher): keeps the label.
    review_resolve(item_id=item.pk, reviewer=manager, category_id=small_tree["phones"].pk)

    _audit(flagged, small_tree["phones"], small_tree["dish"])

    assert not ReviewItem.objects.filter(product=flagged, resolved_at__isnull=True).exists()


def test_a_label_changed_since_the_audit_is_left_alone(flagged, small_tree, manager):
    product = Product.objects.get(pk=flagged.pk)
    audit = LabelAudit.objects.create(status=JobStatus.SUCCEEDED)
    LabelIssue.objects.create(
        audit=audit,
        product=product,
        given_category=small_tree["phones"],
        suggested_category=small_tree["dish"],
        given_probability=0.03,
        suggested_probability=0.94,
    )
    product_category_set(
        product_id=product.pk,
        category_id=small_tree["dish"].pk,
        expected_version=product.version,
        source=CategorySource.MANUAL,
        actor=manager,
        verified=True,
    )
    label_issues_found.send(sender=LabelAudit, audit=audit)
    assert not ReviewItem.objects.exists()


def test_taking_the_proposal_corrects_the_label_of_record(flagged, small_tree, manager_client):
    _audit(flagged, small_tree["phones"], small_tree["dish"])
    item = ReviewItem.objects.get(product=flagged)
    version = Product.objects.get(pk=flagged.pk).version

    manager_client.post(
        reverse("review"), {"item": item.pk, "version": version, "action": "resolve", "category": small_tree["dish"].pk}
    )

    product = Product.objects.get(pk=flagged.pk)
    assert (product.category_id, product.category_source, product.is_verified) == (
        small_tree["dish"].pk,
        CategorySource.ANNOTATION,
        True,
    )
