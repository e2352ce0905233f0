from __future__ import annotations

import pytest

from catalog.models import Product
from core.models import JobStatus
from mlcore.models import ModelVersion, Prediction, RescoreChunk
from mlcore.selectors import product_suggestions
from mlcore.services.rescoring import rescore_chunk, rescore_job_enqueue, rescore_job_run_here, rescore_job_start
from mlcore.services.training import training_run_execute, training_run_start


@pytest.fixture
def version(ml_settings, labelled_catalog, manager, django_capture_on_commit_callbacks) -> ModelVersion:
    with django_capture_on_commit_callbacks(execute=False):
        run = training_run_start(user=manager, epochs=4, learning_rate=5e-3, batch_size=8, max_length=16)
        training_run_execute(run_id=run.pk)
    return ModelVersion.objects.get(pk=run.model_version_id)


def test_zero_shot_suggests_for_every_product_before_any_model(ml_settings, labelled_catalog):
    job = rescore_job_start(version_id=None, enqueue=False)
    job = rescore_job_run_here(job_id=job.pk)

    assert job.status == JobStatus.SUCCEEDED
    assert Prediction.objects.filter(model_version=None).count() == Product.objects.count() == 25
    suggestions = product_suggestions(product=Product.objects.get(sku="U000"))
    assert suggestions
    assert {s["source"] for s in suggestions} == {"zero-shot"}
    # "used" candidates: the two categories the catalog holds.
    assert {s["category_id"] for s in suggestions} <= {labelled_catalog["dish"].pk, labelled_catalog["phones"].pk}
    assert suggestions[0]["confidence"] >= suggestions[-1]["confidence"]


def test_suggestions_switch_only_when_the_job_completes(version: ModelVersion, django_capture_on_commit_callbacks):
    rescore_job_run_here(job_id=rescore_job_start(version_id=None, enqueue=False).pk)
    job = version.rescore_jobs.get()
    chunks = list(RescoreChunk.objects.filter(job=job).order_by("first_id"))
    assert len(chunks) == 7  # 25 products in chunks of 4

    product = Product.objects.order_by("id").first()
    rescore_chunk(job_id=job.pk, first_id=chunks[0].first_id, last_id=chunks[0].last_id)
    version.refresh_from_db()
    assert not version.is_serving
    assert {s["source"] for s in product_suggestions(product=product)} == {"zero-shot"}

    job = rescore_job_run_here(job_id=job.pk)
    version.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert version.is_serving
    assert {s["source"] for s in product_suggestions(product=product)} == {"v1"}


def test_a_rerun_chunk_writes_nothing_twice_and_a_killed_job_resumes(version: ModelVersion):
    job = version.rescore_jobs.get()
    chunks = list(RescoreChunk.objects.filter(job=job).order_by("first_id"))
    for chunk in chunks[:3]:
        rescore_chunk(job_id=job.pk, first_id=chunk.first_id, last_id=chunk.last_id)
    written = Prediction.objects.filter(model_version=version).count()
    # A redelivered task for a finished chunk, and the same chunk's twin arriving late.
    rescore_chunk(job_id=job.pk, first_id=chunks[0].first_id, last_id=chunks[0].last_id)
    assert Prediction.objects.filter(model_version=version).count() == written == 12

    # The worker dies here. Resuming sends only the chunks that are not done.
    from unittest import mock

    with mock.patch("mlcore.tasks.rescore_chunk_task.apply_async") as send:
        assert rescore_job_enqueue(job_id=job.pk) == 4
    assert sorted(call.args[0][1] for call in send.call_args_list) == [c.first_id for c in chunks[3:]]
    # A fine-tuned version's chunks go to `scoring`; only a fast version's take the fast queue.
    assert {call.kwargs["queue"] for call in send.call_args_list} == {"scoring"}
    rescore_job_run_here(job_id=job.pk)
    assert Prediction.objects.filter(model_version=version).count() == Product.objects.count()
    job.refresh_from_db()
    assert (job.products_done, job.chunks_done) == (25, 7)


def test_starting_a_job_twice_returns_the_unfinished_one(version: ModelVersion):
    first = version.rescore_jobs.get()
    assert rescore_job_start(version_id=version.pk, enqueue=False).pk == first.pk


def test_activating_another_version_cancels_the_old_versions_rescoring(
    version: ModelVersion, admin_user, django_capture_on_commit_callbacks
):
    from mlcore.services.registry import model_version_activate
    from mlcore.services.training import training_run_execute, training_run_start

    old_job = version.rescore_jobs.get()
    with django_capture_on_commit_callbacks(execute=False):
        run = training_run_start(user=admin_user, epochs=1, learning_rate=5e-3, batch_size=8, max_length=16)
        training_run_execute(run_id=run.pk)
        # Whether the gate holds the 1-epoch v2 back varies with the CPU's threads; what is tested is the cancel.
        model_version_activate(version_id=run.model_version_id, user=admin_user, force=True, reason="the test's")
    old_job.refresh_from_db()
    assert old_job.status == JobStatus.CANCELLED
    run.refresh_from_db()
    assert run.step == run.total_steps > 0


def test_predictions_carry_the_deepest_confident_category(version: ModelVersion, settings):
    from mlcore.selectors import product_confident_category

    settings.MLCORE_BACKOFF_THRESHOLD = 0.5  # the tiny model is not very sure of anything
    job = rescore_job_run_here(job_id=version.rescore_jobs.get().pk)
    assert job.status == JobStatus.SUCCEEDED
    predictions = list(Prediction.objects.filter(model_version=version).select_related("category", "backoff_category"))
    backed_off = [p for p in predictions if p.backoff_category_id]
    assert backed_off
    for prediction in backed_off:
        # The back-off is the predicted class or one of its ancestors, and at least as likely.
        assert prediction.category.path.startswith(prediction.backoff_category.path)
        assert prediction.backoff_confidence >= max(0.5, prediction.confidence - 1e-6)
    confident = product_confident_category(product=backed_off[0].product)
    assert confident is not None
    assert confident[0] == backed_off[0].backoff_category


def test_old_versions_predictions_are_pruned_beyond_what_a_rollback_keeps(labelled_catalog):
    from catalog.models import Category
    from mlcore.models import ModelVersionStatus
    from mlcore.services.registry import predictions_prune

    product = Product.objects.first()
    versions = []
    for number in range(1, 5):
        version = ModelVersion.objects.create(
            number=number,
            base_model="x",
            status=ModelVersionStatus.ACTIVE if number == 4 else ModelVersionStatus.ARCHIVED,
            is_serving=number == 4,
        )
        versions.append(version)
    for version in [None, *versions]:
        Prediction.objects.create(
            product=product,
            model_version=version,
            top=[],
            category=Category.objects.first(),
            confidence=0.5,
            margin=0.1,
            entropy=0.5,
        )
    assert predictions_prune(keep=1) == 2  # v1 and v2; v3 kept for a rollback, v4 serves, zero-shot stays
    kept = set(Prediction.objects.values_list("model_version__number", flat=True))
    assert kept == {None, 3, 4}
