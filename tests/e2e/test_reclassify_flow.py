"""A catalog manager in a real browser, with a real Celery worker: audits a group of a new model's proposals blind,
approves the group, rejects one product, applies, finds the moved products in the product list by source, and
undoes the batch."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from catalog.models import CategorySource, Product
from core.models import JobStatus
from labeling.models import ReclassificationJob
from labeling.services.reclassification import reclassification_job_run
from tests.e2e.conftest import login
from tests.factories import UserFactory
from tests.labeling.services.test_reclassification import _imported, _predict, _version

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_manager_audits_approves_applies_and_undoes_a_group(
    live_server, page, screenshot, settings, small_tree, celery_worker
):
    settings.RECLASSIFY_AUDIT_SIZE = 2
    version = _version()
    moved = [_imported(small_tree, "phones", title=f"Bosch dishwasher SMS{i}") for i in range(3)]
    for product in moved:
        _predict(version, product, [(small_tree["dish"], 0.95)])
    # Built here rather than sent: the worker is already listening, and this test is about what follows.
    build = ReclassificationJob.objects.create(action="build", model_version=version)
    reclassification_job_run(job_id=build.pk)
    build.refresh_from_db()
    assert build.status == JobStatus.SUCCEEDED, build.error
    batch = build.batch
    UserFactory(username="manager", role=Role.CATALOG_MANAGER)
    login(page, live_server, "manager")

    page.goto(f"{live_server.url}/reclassify/")
    page.click(f"a[href='/reclassify/{batch.pk}/']")
    row = page.locator("tr[data-group^='change:']")
    assert "crosses top-level categories" in row.inner_text()

    # Audit the group blind: the page shows the product, never the proposed category.
    row.locator("button[value=manager]").click()
    for _ in range(2):
        page.wait_for_selector("#audit-item")
        assert "Dishwashers" not in page.locator("#audit-item").inner_text()
        page.fill("#category-search", "Dishwash")
        page.locator("#category-options button").first.click()
        page.click("button[value=category]")
    page.wait_for_selector("text=2 of 2 right")
    page.goto(f"{live_server.url}/reclassify/{batch.pk}/")
    assert "2/2 = 1.00" in page.locator("tr[data-group^='change:']").inner_text()

    # Approve the group, then reject one of its products on the group's page.
    page.locator("tr[data-group^='change:'] button[value=approve]").click()
    page.wait_for_selector("text=3 proposal(s) approved")
    page.locator("tr[data-group^='change:'] td a").first.click()
    page.locator("input[name=ids]").first.check()
    page.click("button[name=decision][value=reject]")
    page.wait_for_selector("text=1 proposal(s) rejected")
    screenshot("reclassify-group")

    # Apply: the worker does it; the progress partial updates without a reload.
    page.goto(f"{live_server.url}/reclassify/{batch.pk}/")
    page.click("text=Apply the 2 approved")
    page.wait_for_selector("text=2 of 2 done, 0 skipped", timeout=60_000)
    page.goto(f"{live_server.url}/catalog/products/?source={CategorySource.RECLASSIFICATION}")
    listed = page.locator("table").inner_text()
    assert sum(product.title in listed for product in moved) == 2
    assert Product.objects.filter(category_source=CategorySource.RECLASSIFICATION).count() == 2

    page.goto(f"{live_server.url}/reclassify/{batch.pk}/")
    page.click("text=Undo the 2 applied")
    page.wait_for_selector("text=Undo #", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelector('#jobs') && !document.querySelector('#jobs').hasAttribute('hx-get')",
        timeout=60_000,
    )
    assert not Product.objects.filter(category_source=CategorySource.RECLASSIFICATION).exists()
    assert set(Product.objects.filter(pk__in=[p.pk for p in moved]).values_list("category_id", flat=True)) == {
        small_tree["phones"].pk
    }
