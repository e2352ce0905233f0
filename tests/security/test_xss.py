"""Hostile text in every field a user or a file can fill (titles, descriptions, brands, attributes, category names,
a flag's reason) comes out escaped in every page, htmx partial, the Django admin and error messages; the browser half
is tests/e2e/test_hostile_text.py (no script runs, no policy violation)."""

from __future__ import annotations

import pytest
from django.test import Client

from catalog.models import Category, Product
from labeling.models import Annotation, AnnotationKind, ReviewItem, ReviewReason
from tests.factories import UserFactory
from tests.security.test_access import GET

IMG = '<img src=x onerror="alert(1)">'
SCRIPT = "</script><script>alert(2)</script>"
HTMX = '"><div hx-get="/admin/" hx-trigger="load">x</div>'
BIDI = "abc\u202egpj.exe"
PAYLOAD = f"{IMG} {SCRIPT} {HTMX} {BIDI}"
# What must never reach a page as markup (the escaped forms, &lt;img ..., are what is expected instead).
RAW = (b"<img src=x", b"<script>alert", b'<div hx-get="/admin/"', b'onerror="alert')


@pytest.fixture
def hostile(world):
    product = Product.objects.get(pk=world.ids["product"])
    product.title = f"Dishwasher {PAYLOAD}"
    product.description = PAYLOAD
    product.brand = IMG
    product.attributes = {"colour": PAYLOAD, IMG: "key as payload"}
    product.save()
    Category.objects.filter(pk=world.ids["category"]).update(name_en=f"Dishwashers {IMG}", name_zh_hans=SCRIPT)
    Annotation.objects.filter(pk=world.ids["annotation"]).update(kind=AnnotationKind.FLAG, reason=PAYLOAD)
    ReviewItem.objects.filter(pk=world.ids["review"]).update(reason=ReviewReason.FLAG, note=PAYLOAD)
    return world


def _raw_payload(body: bytes) -> list[bytes]:
    return [marker for marker in RAW if marker in body]


@pytest.mark.parametrize("role", ["annotator", "manager", "admin"])
def test_no_page_or_partial_lets_the_payload_through(hostile, role):
    client = hostile.client(role)
    leaks = []
    shown = 0
    for url in (*GET, "/catalog/products/?q=Dishwasher", "/label/picker/?q=Dishwashers", "/review/?reason=flag"):
        response = client.get(url.format(**hostile.ids))
        if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/html"):
            continue
        body = response.content
        shown += b"&lt;img src=x" in body
        leaks += [(url, marker) for marker in _raw_payload(body)]
    assert not leaks
    assert shown >= 3  # the payload was on the pages, escaped: the test looked where it is


def test_the_django_admin_escapes_it(hostile):
    staff = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    # What the admin registers: the taxonomy and the labeling queues (whose category carries the payload too).
    for url in (
        "/admin/",
        "/admin/catalog/category/",
        f"/admin/catalog/category/{hostile.ids['category']}/change/",
        "/admin/labeling/labelingqueue/",
        f"/admin/labeling/labelingqueue/{hostile.ids['queue']}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert not _raw_payload(response.content), url


def test_error_messages_escape_what_the_user_sent(hostile):
    client = hostile.client("manager")
    response = client.get(f"/catalog/products/?category={IMG}")
    assert not _raw_payload(response.content)
    response = client.post(
        f"/reclassify/{hostile.ids['batch']}/rebuild/", {"threshold": IMG}, HTTP_REFERER=f"/reclassify/{IMG}"
    )
    follow = client.get(f"/reclassify/{hostile.ids['batch']}/")
    assert not _raw_payload(response.content + follow.content)


def test_api_answers_are_json_never_html(hostile):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(hostile.users["manager"])
    response = api.get(f"/api/v1/products/{hostile.ids['product']}/")
    assert response["Content-Type"].startswith("application/json")
    assert IMG in response.json()["title"]  # data, kept as typed; it is the page's job to escape it
    missing = api.get(f"/api/v1/products/{IMG}/")
    assert missing.status_code == 404
    assert missing["Content-Type"].startswith("application/json")
