from __future__ import annotations

from pathlib import Path

import pytest

from catalog.models import Product
from core.errors import ApplicationError, ConflictError
from core.models import JobStatus
from mlcore.models import (
    LabelAudit,
    ModelVersion,
    ModelVersionStatus,
    RescoreJob,
    TestSetItem,
    TrainingRun,
)
from mlcore.services.training import (
    model_version_activate,
    training_run_cancel,
    training_run_execute,
    training_run_start,
)


def _train(manager, **kwargs) -> ModelVersion:
    run = training_run_start(
        user=manager, epochs=kwargs.pop("epochs", 3), learning_rate=5e-3, batch_size=8, max_length=16, **kwargs
    )
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    return ModelVersion.objects.get(pk=run.model_version_id)


def test_training_needs_labels_in_two_categories(ml_settings, small_tree, manager):
    with pytest.raises(ApplicationError, match="at least 2 categories"):
        training_run_start(user=manager)
    assert not ModelVersion.objects.exists()


def test_first_version_is_registered_evaluated_and_activated(
    ml_settings, labelled_catalog, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        version = _train(manager)

    assert version.number == 1
    assert version.status == ModelVersionStatus.ACTIVE
    assert sorted(p.name for p in Path(version.artifact_path).iterdir() if p.suffix == ".safetensors") == [
        "model.safetensors"
    ]
    snapshot = version.data_snapshot
    assert set(snapshot) == {"counts", "train_ids", "validation_ids", "test_ids"}
    assert sum(snapshot["counts"].values()) == 20
    assert not set(snapshot["train_ids"]) & set(snapshot["test_ids"])
    test = version.metrics["test"]
    assert {
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "per_class",
        "confused_pairs",
        "accuracy_per_level",
        "ece",
        "coverage_at_95",
        "coverage_at_99",
    } <= set(test)
    run = TrainingRun.objects.get(model_version=version)
    assert run.evaluations
    assert run.losses
    # Activation queues re-scoring of the whole catalog with the new version.
    assert RescoreJob.objects.get(model_version=version).products_total == Product.objects.count()
    # ...and, with more verified labels than before, a check of those labels for likely errors.
    assert LabelAudit.objects.get().status == JobStatus.QUEUED


def test_test_set_is_frozen_across_versions(ml_settings, labelled_catalog, manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        first = _train(manager)
        first_test = set(first.data_snapshot["test_ids"])
        assert first_test == set(TestSetItem.objects.values_list("product_id", flat=True))
        second = _train(manager)
    assert set(second.data_snapshot["test_ids"]) >= first_test
    assert not first_test & set(second.data_snapshot["train_ids"])


def test_a_worse_version_waits_for_an_admin(
    ml_settings, labelled_catalog, manager, admin_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        first = _train(manager, epochs=6)
        first.metrics["test"]["macro_f1"] = 1.0  # as if the active version were perfect
        first.save()
        from mlcore.services import training

        original = training.model_version_evaluate

        def evaluate_active_as_perfect(*, artifact, test):
            result = original(artifact=artifact, test=test)
            if str(artifact) == first.artifact_path:
                result["test"]["macro_f1"] = 1.0
            return result

        training.model_version_evaluate = evaluate_active_as_perfect
        try:
            second = _train(manager, epochs=1)
        finally:
            training.model_version_evaluate = original
    assert second.status == ModelVersionStatus.READY
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


def test_one_training_at_a_time_and_cancel(ml_settings, labelled_catalog, manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        run = training_run_start(user=manager)
        with pytest.raises(ConflictError, match="already in progress"):
            training_run_start(user=manager)
    cancelled = training_run_cancel(run_id=run.pk)
    assert cancelled.status == JobStatus.CANCELLED
    training_run_execute(run_id=run.pk)  # the queued task arrives after the cancel: nothing happens
    assert ModelVersion.objects.get().status == ModelVersionStatus.FAILED
    with django_capture_on_commit_callbacks(execute=False):
        assert training_run_start(user=manager).pk != run.pk  # the slot is free again


def test_a_run_whose_worker_died_resumes_from_its_checkpoint(
    ml_settings, labelled_catalog, manager, monkeypatch, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from mlcore.engine import training as engine
    from mlcore.engine.artifacts import load_metrics

    real_train = engine.train

    def dies_after_a_checkpoint(config, **kwargs):
        def should_stop() -> bool:
            if any(Path(kwargs["checkpoint_dir"]).glob("checkpoint-*")):
                raise SystemExit("worker killed")  # not an Exception: nothing in the service gets to clean up
            return False

        return real_train(config, **{**kwargs, "should_stop": should_stop})

    monkeypatch.setattr(engine, "train", dies_after_a_checkpoint)
    with django_capture_on_commit_callbacks(execute=False):
        run = training_run_start(user=manager, epochs=3, learning_rate=5e-3, batch_size=4, max_length=16)
    with pytest.raises(SystemExit):
        training_run_execute(run_id=run.pk)
    monkeypatch.setattr(engine, "train", real_train)
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING
    # The redelivered task finds the heartbeat stale, claims the run again and goes on from the checkpoint.
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=False):
        training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    version = ModelVersion.objects.get(pk=run.model_version_id)
    assert load_metrics(version.artifact_path)["resumed_from"].startswith("checkpoint-")
    assert not (Path(ml_settings.MLCORE_ARTIFACT_DIR) / "checkpoints" / f"v{version.number}").exists()


def test_a_class_that_regresses_holds_the_version_back():
    from mlcore.services.training import class_regressions

    old = {"dish": {"f1-score": 0.95, "support": 12}, "phones": {"f1-score": 0.9, "support": 3}}
    new = {"dish": {"f1-score": 0.70, "support": 12}, "phones": {"f1-score": 0.1, "support": 3}}
    # dish forgot 0.25 with 12 test items; phones fell further but 3 items say little (below the minimum support).
    assert class_regressions(new, old) == [("dish", 0.95, 0.70, 12)]
    assert class_regressions(old, old) == []


def test_rolling_back_serves_the_stored_predictions_at_once_and_scores_what_changed_since(
    ml_settings, labelled_catalog, manager, admin_user, django_capture_on_commit_callbacks
):
    from catalog.services.products import product_create, product_update
    from mlcore.models import Prediction, RescoreJob, ScoringBacklog
    from mlcore.services.rescoring import rescore_job_run_here

    with django_capture_on_commit_callbacks(execute=False):
        first = _train(manager, epochs=3)
    rescore_job_run_here(job_id=first.rescore_jobs.get().pk)
    with django_capture_on_commit_callbacks(execute=False):
        second = model_version_activate(version_id=_train(manager, epochs=1).pk, user=None, force=True)
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


def test_the_curves_grow_while_the_run_trains(
    ml_settings, labelled_catalog, manager, monkeypatch, django_capture_on_commit_callbacks
):
    """The page draws the run's loss and validation macro-F1 from its row: they are written as they come, not at
    the end."""
    from mlcore.engine import training as engine

    original = engine.train
    seen: list[tuple[int, int]] = []

    def spy(config, **kwargs):
        report = kwargs["on_progress"]

        def on_progress(progress):
            report(progress)
            row = TrainingRun.objects.get(pk=run.pk)
            seen.append((len(row.losses), len(row.evaluations)))

        kwargs["on_progress"] = on_progress
        return original(config, **kwargs)

    monkeypatch.setattr(engine, "train", spy)
    with django_capture_on_commit_callbacks(execute=False):
        run = training_run_start(user=manager, epochs=4, learning_rate=5e-3, batch_size=8, max_length=16)
        training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED
    mid_run = [losses for losses, _ in seen[:-1]]
    assert mid_run
    assert max(mid_run) >= 1  # points were there before the run ended
    assert [n for n in mid_run if n] == sorted(n for n in mid_run if n)  # and only grew
    assert any(evaluations for _, evaluations in seen[:-1])


def test_base_models_come_from_the_configured_list(ml_settings, labelled_catalog, manager, settings, tmp_path):
    settings.MLCORE_BASE_MODELS = {"tiny": settings.MLCORE_BASE_MODEL}
    with pytest.raises(ApplicationError, match="Unknown base model '/etc'"):
        training_run_start(user=manager, base_model="/etc")  # a path through the API or the page: refused
    with pytest.raises(ApplicationError, match="LoRA rank"):
        training_run_start(user=manager, base_model="tiny", lora_rank=0)
    run = training_run_start(user=manager, base_model="tiny", method="lora", lora_rank=4, warm_start=False)
    version = run.model_version
    assert version.base_model == settings.MLCORE_BASE_MODEL
    assert (version.hyperparameters["lora_rank"], version.hyperparameters["warm_start"]) == (4, False)


def test_the_training_form_and_the_api_offer_the_same_list(ml_settings, labelled_catalog, admin_user, settings):
    from rest_framework.test import APIClient

    settings.MLCORE_BASE_MODELS = {"tiny": settings.MLCORE_BASE_MODEL}
    from mlcore.forms import TrainingStartForm

    assert [name for name, _ in TrainingStartForm().fields["base_model"].choices] == ["default", "tiny"]
    api = APIClient()
    api.force_authenticate(admin_user)
    refused = api.post("/api/v1/training-runs/", {"base_model": "/tmp"}, format="json")
    assert refused.status_code == 400
    assert "Unknown base model" in refused.json()["detail"]


def test_the_retraining_policy_by_count_schedule_and_minimum_interval(
    ml_settings, labelled_catalog, manager, small_tree, settings, django_capture_on_commit_callbacks
):
    import datetime as dt

    from django.utils import timezone

    from catalog.services.labels import product_category_set
    from mlcore.services.policy import retraining_check, retraining_due, retraining_policy_update

    settings.LABELING_RETRAIN_EVERY = 0
    policy = retraining_policy_update(user=manager, after_labels=2, daily_at=None, min_interval_minutes=30)
    assert policy.after_labels == 2
    assert retraining_due() is not None  # 20 verified labels from the labeling workflow and no run yet
    with django_capture_on_commit_callbacks(execute=False):
        first = retraining_check()
    assert first is not None
    assert retraining_due() is None  # nothing new since, and within the interval
    for sku in ("U000", "U001"):
        product = Product.objects.get(sku=sku)
        product_category_set(
            product_id=product.pk,
            category_id=small_tree["dish"].pk,
            expected_version=product.version,
            source="annotation",
            actor=manager,
            verified=True,
        )
    assert retraining_due() is None  # 2 new labels, but 30 minutes have not passed
    later = timezone.now() + dt.timedelta(minutes=31)
    assert "2 new verified labels" in retraining_due(now=later)

    retraining_policy_update(user=manager, after_labels=0, daily_at=dt.time(3, 0), min_interval_minutes=30)
    local = timezone.localtime(later)
    before_three = timezone.make_aware(dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(2, 59)))
    after_three = before_three + dt.timedelta(minutes=2)
    assert retraining_due(now=before_three) is None
    assert "daily run at 03:00" in retraining_due(now=after_three)
    with pytest.raises(ApplicationError, match="negative"):
        retraining_policy_update(user=manager, after_labels=-1, daily_at=None, min_interval_minutes=0)


def test_only_admins_edit_the_policy_on_the_dashboard(admin_user, manager_client):
    from django.test import Client
    from django.urls import reverse

    from accounts.roles import Role
    from mlcore.services.policy import retraining_policy_get
    from tests.factories import UserFactory

    data = {"after_labels": 50, "daily_at": "02:30", "min_interval_minutes": 120}
    assert manager_client.post(reverse("mlcore:policy"), data).status_code == 403
    admin = Client()
    admin.force_login(UserFactory(username="boss", role=Role.ADMIN))
    assert admin.post(reverse("mlcore:policy"), data).status_code == 302
    policy = retraining_policy_get()
    assert (policy.after_labels, policy.daily_at.strftime("%H:%M"), policy.min_interval_minutes) == (50, "02:30", 120)
    html = admin.get(reverse("mlcore:panel-policy")).content.decode()
    assert "After 50 new verified labels" in html
    assert "daily at 02:30" in html
    bad = admin.post(reverse("mlcore:policy"), {**data, "after_labels": "-3"}, follow=True).content.decode()
    assert "Check the retraining policy" in bad


def test_labels_set_by_hand_do_not_start_a_run(ml_settings, labelled_catalog, manager):
    """The demo seeds its labels by hand (source manual): a fresh `make demo` must not train by itself."""
    from catalog.models import CategoryChange
    from mlcore.services.policy import retraining_due, retraining_policy_update

    CategoryChange.objects.filter(verified=True).update(source="manual")
    retraining_policy_update(user=manager, after_labels=2, daily_at=None, min_interval_minutes=0)
    assert retraining_due() is None
