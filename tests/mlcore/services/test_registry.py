from __future__ import annotations

import pytest

from catalog.models import Product
from core.errors import ApplicationError, ConflictError
from mlcore.models import (
    ModelVersionStatus,
    RescoreJob,
)
from mlcore.services.registry import model_version_activate
from tests.mlcore.services.runs import train_version


def test_a_worse_version_waits_for_an_admin(
    ml_settings, labelled_catalog, manager, admin_user, django_capture_on_commit_callbacks, monkeypatch
):
    with django_capture_on_commit_callbacks(execute=False):
        first = train_version(manager, epochs=6)
        first.metrics["test"]["macro_f1"] = 1.0  # as if the active version were perfect
        first.save()
        from mlcore.services import registry, training

        original = registry.model_version_evaluate

        def evaluate_active_as_perfect(*, artifact, test):
            result = original(artifact=artifact, test=test)
            # The warm-started second version may well be perfect on the 2 test items too: fix both readings, so
            # that the test is about the gate, not about how a 1-epoch run turns out.
            result["test"]["macro_f1"] = 1.0 if str(artifact) == first.artifact_path else 0.5
            return result

        # The gate measures the active version again on the same test items: there it reads as perfect.
        monkeypatch.setattr(registry, "model_version_evaluate", evaluate_active_as_perfect)
        monkeypatch.setattr(training, "model_version_evaluate", evaluate_active_as_perfect)
        second = train_version(manager, epochs=1)
        monkeypatch.undo()
    assert second.status == ModelVersionStatus.READY, second.activation_note
    assert second.activation_note.startswith("Not activated")
    assert second.held_back
    with pytest.raises(ConflictError, match="Pass force"):
        model_version_activate(version_id=second.pk, user=admin_user)
    with pytest.raises(ApplicationError, match="say why"):
        model_version_activate(version_id=second.pk, user=admin_user, force=True)
    with django_capture_on_commit_callbacks(execute=False):
        forced = model_version_activate(
            version_id=second.pk, user=admin_user, force=True, reason="the old one misfiles phones"
        )
    assert forced.status == ModelVersionStatus.ACTIVE
    assert forced.activated_by == admin_user
    assert forced.override_reason == f"{admin_user.get_username()}: the old one misfiles phones"
    assert forced.activation_note.startswith("Not activated")  # the gate's note stays as it was
    first.refresh_from_db()
    assert first.status == ModelVersionStatus.ARCHIVED


def test_a_class_that_regresses_holds_the_version_back():
    from mlcore.services.registry import class_regressions

    old = {"dish": {"f1-score": 0.95, "support": 12}, "phones": {"f1-score": 0.9, "support": 3}}
    new = {"dish": {"f1-score": 0.70, "support": 12}, "phones": {"f1-score": 0.1, "support": 3}}
    # dish forgot 0.25 with 12 test items; phones fell further but 3 items say little (below the minimum support).
    assert class_regressions(new, old) == [("dish", 0.95, 0.70, 12)]
    assert class_regressions(old, old) == []


def test_rolling_back_serves_the_stored_predictions_at_once_and_scores_what_changed_since(
    ml_settings, labelled_catalog, manager, admin_user, django_capture_on_commit_callbacks
):
    from catalog.services.products import product_create, product_update
    from mlcore.models import Prediction, ScoringBacklog
    from mlcore.services.rescoring import rescore_job_run_here

    with django_capture_on_commit_callbacks(execute=False):
        first = train_version(manager, epochs=3)
    rescore_job_run_here(job_id=first.rescore_jobs.get().pk)
    with django_capture_on_commit_callbacks(execute=False):
        second = model_version_activate(version_id=train_version(manager, epochs=1).pk, user=None, force=True)
    rescore_job_run_here(job_id=second.rescore_jobs.get().pk)
    second.refresh_from_db()
    assert second.is_serving
    ScoringBacklog.objects.all().delete()
    edited = Product.objects.get(sku="U000")
    with django_capture_on_commit_callbacks(execute=False):
        product_update(product_id=edited.pk, expected_version=edited.version, changes={"brand": "Acme"})
        added = product_create(sku="NEW-R", title="dishwasher", brand="")
    ScoringBacklog.objects.all().delete()  # as if the serving version had scored them already

    jobs_before = RescoreJob.objects.count()
    with django_capture_on_commit_callbacks(execute=False):
        back = model_version_activate(version_id=first.pk, user=admin_user)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (back.status, first.is_serving, second.is_serving) == (ModelVersionStatus.ACTIVE, True, False)
    assert RescoreJob.objects.count() == jobs_before  # no full re-score: its predictions were still there
    assert set(ScoringBacklog.objects.values_list("product_id", flat=True)) == {edited.pk, added.pk}
    assert Prediction.objects.filter(model_version=first).count() == Product.objects.count() - 1
