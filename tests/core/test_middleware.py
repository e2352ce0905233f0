"""A NUL byte in a query parameter is a 400 with a reason, on the API and on the pages, never a 500 (the API fuzz
found `GET /api/v1/categories/?q=...%00...` answering 500: PostgreSQL text cannot hold a NUL)."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def api(manager) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=manager).key}")
    return client


@pytest.mark.parametrize(
    "path",
    ["/api/v1/categories/?q=fri%00dge", "/api/v1/products/?q=%00", "/api/v1/categories/?parent=&q%00=x"],
)
def test_the_api_refuses_a_nul_in_a_query_parameter_with_a_reason(api, small_tree, path):
    response = api.get(path)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "NUL" in response.json()["detail"]


def test_a_page_refuses_it_too_and_the_same_search_without_it_works(manager_client, small_tree):
    refused = manager_client.get("/catalog/categories/?q=fri%00dge")
    assert refused.status_code == 400
    assert "NUL" in refused.content.decode()
    assert manager_client.get("/catalog/categories/?q=fridge").status_code == 200


def test_a_search_without_a_nul_is_untouched(api, small_tree):
    response = api.get("/api/v1/categories/?q=fridge")
    assert response.status_code == 200
