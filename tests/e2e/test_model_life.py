"""An admin runs a model's life from the browser, with a real Celery worker and the tiny encoder: starts a run,
watches its bar and curve grow without reloading, reads the version's page, trains a second version that the gate
holds back and promotes it with a reason, then rolls back to the first, whose stored predictions serve at once."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from mlcore.models import ModelVersion, ModelVersionStatus, RescoreJob
from tests.e2e.conftest import login
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _train(page, live_server, epochs: str) -> None:
    page.goto(f"{live_server.url}/models/")
    page.fill("#train input[name=epochs]", epochs)
    page.fill("#train input[name=learning_rate]", "0.005")
    page.fill("#train input[name=max_length]", "16")
    page.click("#train button[type=submit]")
    page.wait_for_selector("text=Training run #")


def test_an_admin_trains_reads_promotes_and_rolls_back(
    live_server, page, screenshot, settings, ml_settings, labelled_catalog, celery_worker
):
    settings.MLCORE_GATE_CLASS_MIN_SUPPORT = 1
    settings.MLCORE_GATE_CLASS_MARGIN = -1.0  # any class at all "regresses": the second version is held back
    UserFactory(username="boss", role=Role.ADMIN)
    login(page, live_server, "boss")

    _train(page, live_server, "6")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    # The run's row grows a loss curve while the page polls: no reload.
    page.wait_for_selector("#live polyline", timeout=120_000)
    page.wait_for_function(
        "() => document.querySelector('#live') && !document.querySelector('#live').hasAttribute('hx-get')",
        timeout=180_000,
    )
    assert navigations == []
    first = ModelVersion.objects.get(number=1)
    assert first.status == ModelVersionStatus.ACTIVE
    assert RescoreJob.objects.get(model_version=first).status == "succeeded"
    first.refresh_from_db()
    assert first.is_serving

    page.click(f"a[href='/models/versions/{first.pk}/']")
    page.wait_for_selector("text=On the frozen test set")
    assert "Per class" in page.content()
    screenshot("version-page")

    # A second version the gate holds back; the admin promotes it, giving a reason.
    _train(page, live_server, "0.2")
    page.wait_for_function(
        "() => document.querySelector('#live') && !document.querySelector('#live').hasAttribute('hx-get')",
        timeout=180_000,
    )
    second = ModelVersion.objects.get(number=2)
    assert second.held_back
    page.goto(f"{live_server.url}/models/")
    page.fill("input[name=reason]", "checking the rollback")
    page.click("text=Promote anyway")
    page.wait_for_selector("text=is active")
    second.refresh_from_db()
    assert second.override_reason.endswith("checking the rollback")
    assert second.status == ModelVersionStatus.ACTIVE
    page.wait_for_function(
        "() => document.querySelector('#live') && !document.querySelector('#live').hasAttribute('hx-get')",
        timeout=180_000,
    )

    # Roll back: the first version's stored predictions serve again at once, without a re-score.
    jobs = RescoreJob.objects.count()
    page.goto(f"{live_server.url}/models/")
    page.click("text=Roll back to it")
    page.wait_for_selector("text=serves its stored predictions again")
    first.refresh_from_db()
    assert (first.status, first.is_serving) == (ModelVersionStatus.ACTIVE, True)
    assert RescoreJob.objects.count() == jobs
