from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.models import CategoryChange, ImportJob, Product
from tests.factories import ProductFactory


def test_pages_need_a_login(client, db):
    response = client.get(reverse("catalog:product-list"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_product_list_filters_by_subtree_source_and_uncategorised(annotator_client, small_tree):
    dish = ProductFactory(title="Bosch dishwasher", category=small_tree["dish"])
    phone = ProductFactory(title="Pixel phone", category=small_tree["phones"])
    loose = ProductFactory(title="Mystery box")

    def titles(**params):
        response = annotator_client.get(reverse("catalog:product-list"), params)
        assert response.status_code == 200
        return {p.title for p in response.context["products"]}

    assert titles(category=small_tree["home"].pk) == {dish.title}
    assert titles(category=small_tree["el"].pk) == {phone.title}
    assert titles(uncategorised="on") == {loose.title}
    assert titles(q="dishwasher") == {dish.title}
    assert titles(q=phone.sku) == {phone.title}
    assert titles(source="import") == {dish.title, phone.title}


def test_product_list_htmx_request_gets_only_the_results_partial(annotator_client, small_tree):
    ProductFactory(title="Bosch dishwasher", category=small_tree["dish"])
    response = annotator_client.get(reverse("catalog:product-list"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert 'id="results"' in body
    assert "<html" not in body


def test_product_list_pages_by_keyset(annotator_client, db):
    ProductFactory.create_batch(120)
    first = annotator_client.get(reverse("catalog:product-list"))
    cursor = first.context["next_cursor"]
    second = annotator_client.get(reverse("catalog:product-list"), {"before": cursor})
    ids_first = [p.pk for p in first.context["products"]]
    ids_second = [p.pk for p in second.context["products"]]
    assert len(ids_first) == len(ids_second) == 50
    assert max(ids_second) < min(ids_first)


def test_unknown_category_filter_says_so(annotator_client, db):
    response = annotator_client.get(reverse("catalog:product-list"), {"category": 999999})
    assert response.status_code == 200
    assert "No category with id 999999" in response.content.decode()


def test_taxonomy_browser_expands_lazily_and_searches_in_chinese(annotator_client, small_tree):
    page = annotator_client.get(reverse("catalog:category-browser")).content.decode()
    assert "Home &amp; Garden" in page
    assert "Dishwashers" not in page  # not loaded until expanded
    children = annotator_client.get(reverse("catalog:category-children", args=[small_tree["kitchen"].pk]))
    assert "Dishwashers" in children.content.decode()
    found = annotator_client.get(reverse("catalog:category-search"), {"q": "洗碗机"}).content.decode()
    assert "Dishwashers" in found


def test_chinese_interface_shows_chinese_category_names(annotator_client, annotator, small_tree):
    annotator_client.post(reverse("language-set"), {"language": "zh-hans", "next": "/catalog/categories/"})
    page = annotator_client.get(reverse("catalog:category-browser")).content.decode()
    assert "家居与园艺" in page
    assert "分类体系" in page  # our own interface strings are translated too, not only the data
    annotator.refresh_from_db()
    assert annotator.preference.language == "zh-hans"


def test_new_visitor_gets_the_browser_language(client, db):
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert "登录" in page


@pytest.mark.parametrize(
    ("url_name", "method"),
    [("catalog:import-list", "get"), ("catalog:import-list", "post"), ("catalog:product-export", "get")],
)
def test_annotator_cannot_import_or_export(annotator_client, url_name, method):
    response = getattr(annotator_client, method)(reverse(url_name))
    assert response.status_code == 403


def test_annotator_cannot_change_a_category(annotator_client, small_tree):
    product = ProductFactory()
    response = annotator_client.post(
        reverse("catalog:product-detail", args=[product.pk]),
        {"category": small_tree["dish"].pk, "version": product.version, "verified": "on"},
    )
    assert response.status_code == 403
    product.refresh_from_db()
    assert product.category is None


def test_manager_sets_a_category_and_a_stale_form_is_refused(manager_client, small_tree):
    product = ProductFactory()
    url = reverse("catalog:product-detail", args=[product.pk])
    manager_client.post(url, {"category": small_tree["dish"].pk, "version": 1, "verified": "on"})
    product.refresh_from_db()
    assert (product.category, product.category_source, product.is_verified) == (small_tree["dish"], "manual", True)
    assert CategoryChange.objects.filter(product=product).count() == 1

    # A second form opened before the first save still carries version 1.
    response = manager_client.post(url, {"category": small_tree["fridge"].pk, "version": 1}, follow=True)
    assert "changed by someone else" in response.content.decode()
    product.refresh_from_db()
    assert product.category == small_tree["dish"]


def test_manager_uploads_an_import_and_sees_the_job(manager_client, small_tree, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("offers.csv", b"sku,title,category\nX1,Fridge,hg-11-2\n", content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=False):
        response = manager_client.post(
            reverse("catalog:import-list"), {"kind": "products", "file": upload, "language": "en"}
        )
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:import-detail", args=[job.pk])
    page = manager_client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 1s"' in page  # polls until the worker finishes


def test_export_neutralises_formulas(manager_client, db):
    ProductFactory(sku="F1", title='=HYPERLINK("http://x")', brand="@evil")
    response = manager_client.get(reverse("catalog:product-export"), {"format": "csv"})
    body = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in body
    assert ",'@evil," in body
    jsonl = b"".join(manager_client.get(reverse("catalog:product-export"), {"format": "jsonl"}).streaming_content)
    assert "'=HYPERLINK" in jsonl.decode()


def test_unknown_product_is_a_clear_404(annotator_client, db):
    response = annotator_client.get(reverse("catalog:product-detail", args=[424242]))
    assert response.status_code == 404
    assert "No product with id 424242" in response.content.decode()
    assert Product.objects.count() == 0
