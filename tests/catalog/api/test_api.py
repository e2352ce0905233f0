from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import ImportJob, Product
from tests.factories import ProductFactory


@pytest.fixture
def api(manager) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=manager).key}")
    return client


@pytest.fixture
def annotator_api(annotator) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    return client


def test_anonymous_gets_401(db):
    assert APIClient().get("/api/v1/products/").status_code == 401


def test_list_filters_and_cursor_pagination(api, small_tree):
    ProductFactory.create_batch(3, category=small_tree["dish"])
    ProductFactory.create_batch(2)
    response = api.get("/api/v1/products/", {"category": small_tree["home"].pk, "page_size": 2})
    assert response.status_code == 200
    assert len(response.data["results"]) == 2
    following = api.get(response.data["next"])
    assert len(following.data["results"]) == 1
    assert api.get("/api/v1/products/", {"uncategorised": "true"}).data["results"].__len__() == 2


def test_bad_filter_value_is_a_400_with_a_message(api, db):
    response = api.get("/api/v1/products/", {"category": "abc"})
    assert response.status_code == 400
    assert "integer" in response.data["detail"]


def test_create_update_and_stale_update(api, small_tree):
    created = api.post(
        "/api/v1/products/", {"sku": "N1", "title": "New", "category_id": small_tree["dish"].pk}, format="json"
    )
    assert created.status_code == 201
    pk, version = created.data["id"], created.data["version"]
    assert created.data["category"]["external_id"] == "hg-11-1"

    updated = api.patch(f"/api/v1/products/{pk}/", {"version": version, "title": "Newer"}, format="json")
    assert updated.status_code == 200
    assert updated.data["version"] == version + 1

    stale = api.patch(f"/api/v1/products/{pk}/", {"version": version, "title": "Lost"}, format="json")
    assert stale.status_code == 409
    assert stale.data["current_version"] == version + 1
    assert Product.objects.get(pk=pk).title == "Newer"

    duplicate = api.post("/api/v1/products/", {"sku": "N1", "title": "Again"}, format="json")
    assert duplicate.status_code == 409


def test_unknown_product_is_404_json(api, db):
    response = api.get("/api/v1/products/999999/")
    assert response.status_code == 404
    assert "detail" in response.data


def test_annotator_reads_but_cannot_write_or_import(annotator_api, db):
    product = ProductFactory()
    assert annotator_api.get(f"/api/v1/products/{product.pk}/").status_code == 200
    assert annotator_api.patch(f"/api/v1/products/{product.pk}/", {"version": 1, "title": "x"}).status_code == 403
    assert annotator_api.post("/api/v1/products/", {"sku": "Z", "title": "z"}).status_code == 403
    assert annotator_api.get("/api/v1/imports/").status_code == 403


def test_categories_tree_search_and_path(api, small_tree):
    roots = api.get("/api/v1/categories/", {"parent": "root"}).data["results"]
    assert {c["external_id"] for c in roots} == {"hg", "el"}
    found = api.get("/api/v1/categories/", {"q": "洗碗机"}).data["results"]
    assert found[0]["external_id"] == "hg-11-1"
    path = api.get(f"/api/v1/categories/{small_tree['dish'].pk}/path/").data
    assert [c["external_id"] for c in path] == ["hg", "hg-11", "hg-11-1"]
    zh = api.get(f"/api/v1/categories/{small_tree['dish'].pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").data
    assert zh["name"] == "洗碗机"


def test_import_post_returns_a_job_and_its_errors(api, db, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("p.csv", b"sku,title\n,missing sku\nB,ok\n")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/imports/", {"kind": "products", "file": upload}, format="multipart")
    # CELERY_TASK_ALWAYS_EAGER is off: the task went to the broker. Run the job here as the worker would.
    assert response.status_code == 202
    job_id = response.data["id"]
    from catalog.services.jobs import import_job_run

    import_job_run(job_id=job_id)
    status = api.get(f"/api/v1/imports/{job_id}/").data
    assert (status["status"], status["error_count"], status["written"]) == ("failed", 1, False)
    errors = api.get(f"/api/v1/imports/{job_id}/errors/").data["results"]
    assert errors == [{"line": 2, "field": "sku", "reason": "empty sku", "value": ""}]
    assert ImportJob.objects.count() == 1


def test_schema_and_docs_are_served(api, db):
    assert api.get("/api/schema/").status_code == 200
    assert api.get("/api/docs/").status_code == 200


def test_token_is_issued_for_username_and_password(manager):
    response = APIClient().post("/api/v1/auth/token/", {"username": "mgr", "password": "pw-for-tests"})
    assert response.status_code == 200
    token = response.data["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/products/").status_code == 200


def test_manager_moves_and_archives_a_category_annotator_cannot(api, annotator_api, small_tree):
    fridge = small_tree["fridge"]
    assert annotator_api.patch(f"/api/v1/categories/{fridge.pk}/", {"is_active": False}).status_code == 403

    moved = api.patch(
        f"/api/v1/categories/{fridge.pk}/", {"parent": small_tree["el"].pk, "name_en": "Cool boxes"}, format="json"
    )
    assert moved.status_code == 200
    assert moved.data["full_path_en"] == "Electronics > Cool boxes"
    loop = api.patch(f"/api/v1/categories/{small_tree['home'].pk}/", {"parent": small_tree["dish"].pk}, format="json")
    assert loop.status_code == 400
    assert "under itself" in loop.data["detail"]
    archived = api.patch(f"/api/v1/categories/{fridge.pk}/", {"is_active": False}, format="json")
    assert archived.data["is_active"] is False


def test_a_manager_merges_a_category_into_another_annotator_cannot(api, annotator_api, small_tree):
    from catalog.models import TaxonomyChange

    fridge, kitchen = small_tree["fridge"], small_tree["kitchen"]
    url = f"/api/v1/categories/{fridge.pk}/merge/"
    assert annotator_api.post(url, {"into": kitchen.pk}, format="json").status_code == 403
    assert api.post(url, {"into": 999999}, format="json").status_code == 404
    assert api.post(url, {"into": "kitchen"}, format="json").status_code == 400
    merged = api.post(url, {"into": kitchen.pk}, format="json")
    assert merged.status_code == 200
    assert merged.data["id"] == kitchen.pk
    assert TaxonomyChange.objects.filter(category=fridge, kind="merge", replacement=kitchen).exists()
    again = api.post(url, {"into": kitchen.pk}, format="json")
    assert again.status_code == 400
    assert "archived already" in again.data["detail"]
