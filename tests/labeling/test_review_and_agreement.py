from __future__ import annotations

import random

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from catalog.models import Product
from core.errors import ConflictError
from labeling.agreement import cohen_kappa, kappa_by_group, pairwise_kappa
from labeling.models import ReviewItem
from labeling.services.annotations import annotation_submit
from labeling.services.queue import queue_next
from labeling.services.reviews import review_resolve


@pytest.fixture
def disputed(settings, queue_catalog, annotators, small_tree) -> ReviewItem:
    """Two annotators disagree on the most uncertain item."""
    settings.LABELING_OVERLAP = 2
    settings.LABELING_DOUBLE_SHARE = 0.0
    settings.LABELING_STRATEGY_WEIGHTS = {"uncertainty": 1.0, "disagreement": 0.0, "random": 0.0}
    a, b = annotators[:2]
    lease_a, lease_b = queue_next(annotator=a), queue_next(annotator=b)
    annotation_submit(annotator=a, product_id=lease_a.product_id, category_id=small_tree["dish"].pk)
    annotation_submit(annotator=b, product_id=lease_b.product_id, category_id=small_tree["fridge"].pk)
    return ReviewItem.objects.get(product_id=lease_a.product_id)


def test_kappa_matches_the_textbook_and_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(3)
    first = [rng.choice("abc") for _ in range(200)]
    second = [x if rng.random() < 0.7 else rng.choice("abc") for x in first]
    assert cohen_kappa(zip(first, second, strict=True)) == pytest.approx(cohen_kappa_score(first, second))
    assert cohen_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)
    assert cohen_kappa([]) is None
    assert cohen_kappa([("a", "a"), ("a", "a")]) is None  # chance agreement is 1: undefined


def test_kappa_per_pair_and_per_group():
    labels = {1: {"ann": 1, "bob": 1}, 2: {"ann": 2, "bob": 2}, 3: {"ann": 1, "bob": 2, "cy": 1}}
    pairs = {(p.first, p.second): p for p in pairwise_kappa(labels)}
    assert pairs[("ann", "bob")].items == 3
    assert pairs[("ann", "bob")].kappa == pytest.approx((2 / 3 - 4 / 9) / (1 - 4 / 9))
    assert pairs[("ann", "cy")].items == 1
    assert set(kappa_by_group(labels, {1: "Home", 2: "Home", 3: "Electronics"})) == {"Home", "Electronics"}


def test_adjudication_sets_the_label_of_record_and_closes_the_review(disputed, manager, small_tree):
    product = Product.objects.get(pk=disputed.product_id)
    with pytest.raises(ConflictError, match="changed since"):
        review_resolve(
            item_id=disputed.pk,
            reviewer=manager,
            category_id=small_tree["fridge"].pk,
            product_version=product.version + 1,
        )
    review_resolve(
        item_id=disputed.pk, reviewer=manager, category_id=small_tree["fridge"].pk, product_version=product.version
    )
    product.refresh_from_db()
    assert (product.category, product.is_verified, product.category_source) == (
        small_tree["fridge"],
        True,
        "annotation",
    )
    with pytest.raises(ConflictError, match="already"):
        review_resolve(item_id=disputed.pk, reviewer=manager, category_id=small_tree["dish"].pk)


def test_review_page_offers_the_answers_first_and_resolves_by_post(disputed, manager, annotators, small_tree):
    client = Client()
    client.force_login(manager)
    page = client.get(reverse("review")).content.decode()
    assert "annotators disagree" in page
    assert page.index("Dishwashers") < page.index("Confirm")
    assert 'data-key="1"' in page
    product = Product.objects.get(pk=disputed.product_id)
    response = client.post(
        reverse("review"),
        {"item": disputed.pk, "version": product.version, "category": small_tree["dish"].pk},
        HTTP_HX_REQUEST="true",
    )
    assert "Nothing to review" in response.content.decode()
    report = client.get(reverse("review-agreement")).content.decode()
    assert "annotator0 · annotator1" in report
    # The manager sided with annotator0 (Dishwashers): 100 % for them, 0 % for annotator1, on one item each.
    assert "<td>annotator0</td><td>100%</td><td>1</td>" in report
    assert "<td>annotator1</td><td>0%</td><td>1</td>" in report

    annotator_client = Client()
    annotator_client.force_login(annotators[0])
    assert annotator_client.get(reverse("review")).status_code == 403


def test_review_api_lists_and_dismisses(disputed, manager, annotators):
    api = APIClient()
    api.force_authenticate(manager)
    listed = api.get("/api/v1/reviews/").json()["results"]
    assert [r["id"] for r in listed] == [disputed.pk]
    assert api.post(f"/api/v1/reviews/{disputed.pk}/dismiss/").status_code == 200
    assert api.get("/api/v1/reviews/").json()["results"] == []
    assert not Product.objects.get(pk=disputed.product_id).is_verified
    annotator_api = APIClient()
    annotator_api.force_authenticate(annotators[0])
    assert annotator_api.get("/api/v1/reviews/").status_code == 403
