from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from catalog.models import Product
from labeling.models import Annotation


@pytest.fixture(autouse=True)
def _single_overlap(settings):
    settings.LABELING_OVERLAP = 1
    settings.LABELING_DOUBLE_SHARE = 0.0
    settings.LABELING_STRATEGY_WEIGHTS = {"uncertainty": 1.0, "disagreement": 0.0, "random": 0.0}


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_next_item_submit_and_idempotent_retry(queue_catalog, annotators, small_tree):
    api = _client(annotators[0])
    item = api.get("/api/v1/queue/next").json()
    assert item["product"]["sku"] == "Q000"
    assert item["suggestions"][0]["source"] == "zero-shot"
    body = {
        "product": item["product"]["id"],
        "category": small_tree["dish"].pk,
        "product_version": item["product"]["version"],
        "client_key": "abc",
    }
    first = api.post("/api/v1/annotations", body, format="json")
    retry = api.post("/api/v1/annotations", body, format="json")
    assert first.status_code == retry.status_code == 201
    assert first.json()["id"] == retry.json()["id"]
    assert Product.objects.get(pk=item["product"]["id"]).is_verified
    stale = api.post("/api/v1/annotations", {**body, "client_key": "other"}, format="json")
    assert stale.status_code == 409


def test_skip_flag_undo_and_errors(queue_catalog, annotators, small_tree):
    api = _client(annotators[0])
    item = api.get("/api/v1/queue/next").json()
    assert api.post("/api/v1/annotations/skip", {"product": item["product"]["id"]}, format="json").status_code == 201
    second = api.get("/api/v1/queue/next").json()
    assert second["product"]["id"] != item["product"]["id"]
    assert api.post("/api/v1/annotations/flag", {"product": second["product"]["id"]}, format="json").status_code == 400
    assert api.post("/api/v1/annotations/undo").status_code == 200  # takes back the skip
    assert api.get("/api/v1/queue/next").json()["product"]["id"] == item["product"]["id"]
    assert (
        api.post(
            "/api/v1/annotations", {"product": 999999, "category": small_tree["dish"].pk}, format="json"
        ).status_code
        == 404
    )


def test_annotators_see_only_their_own_annotations(queue_catalog, annotators, small_tree, manager):
    for annotator in annotators[:2]:
        api = _client(annotator)
        item = api.get("/api/v1/queue/next").json()
        api.post(
            "/api/v1/annotations", {"product": item["product"]["id"], "category": small_tree["dish"].pk}, format="json"
        )
    mine = _client(annotators[0]).get("/api/v1/annotations").json()["results"]
    assert {a["annotator"] for a in mine} == {annotators[0].pk}
    everyone = _client(manager).get("/api/v1/annotations").json()["results"]
    assert len(everyone) == 2 == Annotation.objects.count()


def test_queue_needs_the_annotator_permission(db):
    from tests.factories import UserFactory

    nobody = UserFactory(username="norole")
    assert _client(nobody).get("/api/v1/queue/next").status_code == 403


def test_queues_managers_create_annotators_use(queue_catalog, annotators, manager, small_tree):
    created = _client(manager).post(
        "/api/v1/queues/", {"name": "Kitchen", "category": small_tree["kitchen"].pk}, format="json"
    )
    assert created.status_code == 201
    assert _client(annotators[0]).post("/api/v1/queues/", {"name": "x"}, format="json").status_code == 403
    queue_id = created.json()["id"]
    assert [q["name"] for q in _client(annotators[0]).get("/api/v1/queues/").json()["results"]] == ["Kitchen"]
    item = _client(annotators[0]).get("/api/v1/queue/next", {"queue": queue_id})
    # Every queue item's top zero-shot suggestion is Dishwashers, under Kitchen: all are in scope.
    assert item.status_code == 200
    assert _client(annotators[0]).get("/api/v1/queue/next", {"queue": 999}).status_code == 404


def test_ahead_leases_the_item_after_the_current_one(queue_catalog, annotators, small_tree):
    api = _client(annotators[0])
    assert api.get("/api/v1/queue/next?ahead=1").json()["product"]["sku"] == "Q001"
    assert api.get("/api/v1/queue/next").json()["product"]["sku"] == "Q000"
    assert _client(annotators[1]).get("/api/v1/queue/next").json()["product"]["sku"] == "Q002"
