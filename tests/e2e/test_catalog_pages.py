"""A catalog manager's first hour, in a real browser: browse the taxonomy, import a file with three broken rows,
read the report, fix the file and import it. An annotator sees no import page."""

from __future__ import annotations

from pathlib import Path

import pytest

from accounts.roles import Role
from catalog.models import Product
from catalog.services.taxonomy import taxonomy_import
from tests.conftest import DEMO_DATA
from tests.e2e.conftest import login
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BROKEN = (
    "sku,title,brand,category\n"
    "D1,Bosch Serie 4 dishwasher SMS4,Bosch,hg-11-7-9\n"
    ",Miele fridge without sku,Miele,\n"
    "D3,Samsung TV,Samsung,Electronics > Video > Nowhere\n"
    "D4,Too,many,fields,here\n"
    "D5,Whirlpool microwave,Whirlpool,Home & Garden > Kitchen & Dining > Kitchen Appliances > Microwave Ovens\n"
)
FIXED = (
    "sku,title,brand,category\n"
    "D1,Bosch Serie 4 dishwasher SMS4,Bosch,hg-11-7-9\n"
    "D2,Miele fridge KFN,Miele,\n"
    "D3,Samsung TV,Samsung,Electronics > Video > Televisions\n"
    "D4,Sony headphones,Sony,\n"
    "D5,Whirlpool microwave,Whirlpool,Home & Garden > Kitchen & Dining > Kitchen Appliances > Microwave Ovens\n"
)


@pytest.fixture
def shopify(transactional_db) -> None:
    folder = DEMO_DATA / "shopify-taxonomy"
    taxonomy_import(path=folder / "categories_2024-07_en.tsv", release="2024-07")
    taxonomy_import(path=folder / "categories_2024-07_zh-CN.tsv", language="zh-hans")


def test_manager_browses_imports_broken_file_then_fixed_file(
    live_server, page, screenshot, shopify, celery_worker, tmp_path: Path
):
    UserFactory(username="manager", role=Role.CATALOG_MANAGER)
    login(page, live_server, "manager")

    # Taxonomy: 10k nodes, expanded lazily, searched in Chinese.
    page.click("text=Taxonomy")
    page.locator("li:has(> a:text-is('Home & Garden')) > button.toggle").click()
    page.locator("li:has(> a:text-is('Kitchen & Dining')) > button.toggle").click()
    page.wait_for_selector("text=Kitchen Appliances")
    page.fill("input[name=q]", "洗碗机")
    page.wait_for_selector("#search-results >> text=Kitchen Appliances > Dishwashers")
    screenshot("taxonomy-browser")

    # The broken file: a clear report, nothing written.
    broken = tmp_path / "offers.csv"
    broken.write_text(BROKEN, encoding="utf-8")
    page.click("text=Imports")
    page.set_input_files("input[type=file]", str(broken))
    page.click("text=Upload and import")
    page.wait_for_selector("text=nothing was written", timeout=60_000)
    rows = page.locator("table.errors tbody tr")
    assert rows.count() == 3
    assert "empty sku" in rows.nth(0).inner_text()
    assert "no such category" in rows.nth(1).inner_text()
    assert "expected 4 fields" in rows.nth(2).inner_text()
    screenshot("import-report")
    assert Product.objects.count() == 0

    # Fixed: imported, and the products are there with their categories.
    fixed = tmp_path / "offers-fixed.csv"
    fixed.write_text(FIXED, encoding="utf-8")
    page.click("text=Imports")
    page.set_input_files("input[type=file]", str(fixed))
    page.click("text=Upload and import")
    page.wait_for_selector("text=Succeeded", timeout=60_000)
    assert Product.objects.count() == 5
    page.click("text=Products")
    page.wait_for_selector("text=Bosch Serie 4 dishwasher SMS4")
    page.fill("#id_q", "whirlpool")
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 1")
    page.fill("#id_q", "")
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 5")
    screenshot("product-list")


def test_annotator_has_no_import_page(live_server, page, transactional_db):
    UserFactory(username="annotator", role=Role.ANNOTATOR)
    login(page, live_server, "annotator")
    assert page.locator("nav >> text=Imports").count() == 0
    response = page.goto(f"{live_server.url}/catalog/imports/")
    assert response.status == 403
