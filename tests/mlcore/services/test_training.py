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
    TrainingRun,
)
from mlcore.services.training import training_run_cancel, training_run_execute, training_run_start
from tests.mlcore.services.runs import train_version


def test_training_needs_labels_in_two_categories(ml_settings, small_tree, manager):
    with pytest.raises(ApplicationError, match="at least 2 categories"):
        training_run_start(user=manager)
    assert not ModelVersion.objects.exists()


def test_first_version_is_registered_evaluated_and_activated(
    ml_settings, labelled_catalog, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        version = train_version(manager)

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


def test_a_new_run_clears_checkpoints_a_killed_worker_left(
    ml_settings, labelled_catalog, manager, django_capture_on_commit_callbacks
):
    """A worker killed after a failed run's end committed, before its files went, leaves them: the next run (the only
    one training) deletes every checkpoint folder but its own."""
    stale = Path(ml_settings.MLCORE_ARTIFACT_DIR) / "checkpoints" / "v7" / "checkpoint-40"
    stale.mkdir(parents=True)
    with django_capture_on_commit_callbacks(execute=False):
        run = training_run_start(user=manager)
    assert not stale.parent.exists()
    own = Path(ml_settings.MLCORE_ARTIFACT_DIR) / "checkpoints" / f"v{run.model_version.number}"
    own.mkdir(parents=True)  # as the run's worker writes it
    with pytest.raises(ConflictError):
        training_run_start(user=manager)  # refused: it deletes nothing
    assert own.exists()


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


def test_a_fast_head_registers_a_version_the_gate_weighs_and_serves_from_stored_embeddings(
    ml_settings, labelled_catalog, manager, django_capture_on_commit_callbacks
):
    from mlcore.models import Prediction, ProductEmbedding, TrainingMethod
    from mlcore.services.rescoring import rescore_job_run_here
    from mlcore.services.training import fast_version_fit

    with django_capture_on_commit_callbacks(execute=False):
        fast = fast_version_fit(user=manager)
    assert fast.method == TrainingMethod.FAST
    assert fast.status == ModelVersionStatus.ACTIVE  # the first version: nothing to be worse than
    assert Path(fast.artifact_path, "fasthead.npz").exists()
    # Measured on the frozen test set like any version (its size here depends on the products' ids).
    assert fast.metrics["test"]["n"] == len(fast.data_snapshot["test_ids"])
    assert not set(fast.data_snapshot["train_ids"]) & set(fast.data_snapshot["test_ids"])
    # The verified products were embedded once; re-scoring the catalog reads them and embeds only the rest.
    assert ProductEmbedding.objects.count() >= 20
    rescore_job_run_here(job_id=fast.rescore_jobs.get().pk)
    fast.refresh_from_db()
    assert fast.is_serving
    assert Prediction.objects.filter(model_version=fast).count() == Product.objects.count()
    assert ProductEmbedding.objects.count() == Product.objects.count()
    kitchen = Prediction.objects.get(model_version=fast, product__sku="U000")  # "dishwasher new 0"
    assert kitchen.category_id == labelled_catalog["dish"].pk
    # Each suggestion shows the verified products that support it: the nearest labelled dishwashers first.
    from mlcore.selectors import product_suggestions

    top = product_suggestions(product=Product.objects.get(sku="U000"), evidence=True)[0]
    assert top["category_id"] == labelled_catalog["dish"].pk
    assert len(top["evidence"]) == 3
    assert top["evidence"][0]["title"].startswith("dishwasher")
    assert top["evidence"][0]["similarity"] >= top["evidence"][2]["similarity"]

    # A fine-tuned version is gated against the serving fast head on the same test items, and warm-starts from
    # the base model (a fast head has no encoder weights to start from).
    with django_capture_on_commit_callbacks(execute=False):
        tuned = train_version(manager, epochs=3)
    assert f"vs active v{fast.number}" in tuned.activation_note
    assert tuned.warm_started_from is None


def test_a_fast_head_needs_two_categories(ml_settings, small_tree, manager):
    from mlcore.services.training import fast_version_fit

    with pytest.raises(ApplicationError, match="at least 2 categories"):
        fast_version_fit(user=manager)
