"""Every product has suggestions: created, edited or imported products are scored on their own, by the serving
version or zero-shot, without a full re-score; a version's switch tops up what its re-score missed."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from catalog.models import Product
from catalog.services.products import product_create, product_update
from mlcore.models import ModelVersion, Prediction, ScoringBacklog
from mlcore.selectors import product_suggestions
from mlcore.services.rescoring import rescore_job_run_here, rescore_job_start
from mlcore.services.scoring import scoring_backlog_drain
from mlcore.services.training import training_run_execute, training_run_start
from tests.factories import ProductFactory


def test_a_new_product_is_queued_and_scored_zero_shot_then_rescored_when_edited(
    ml_settings, labelled_catalog, django_capture_on_commit_callbacks
):
    rescore_job_run_here(job_id=rescore_job_start(version_id=None, enqueue=False).pk)
    with django_capture_on_commit_callbacks(execute=False):
        product = product_create(sku="NEW-1", title="dishwasher silent", brand="Bosch")
    assert ScoringBacklog.objects.filter(product=product).exists()
    assert not product_suggestions(product=product)

    assert scoring_backlog_drain() == 1
    assert not ScoringBacklog.objects.exists()
    suggestions = product_suggestions(product=product)
    assert suggestions
    assert {s["source"] for s in suggestions} == {"zero-shot"}
    first = Prediction.objects.get(product=product, model_version=None)

    with django_capture_on_commit_callbacks(execute=False):
        product_update(product_id=product.pk, expected_version=product.version, changes={"title": "smartphone 5g"})
    assert scoring_backlog_drain() == 1
    again = Prediction.objects.get(product=product, model_version=None)  # replaced, never two
    assert again.pk != first.pk


def test_a_change_while_a_drain_scores_is_not_lost(
    ml_settings, labelled_catalog, monkeypatch, django_capture_on_commit_callbacks
):
    """The drain deletes a backlog row only as it read it: a product edited while it was being scored stays queued
    and is scored again with its new text."""
    from mlcore.services import scoring

    product = Product.objects.get(sku="U000")
    ScoringBacklog.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=False):
        product_update(product_id=product.pk, expected_version=product.version, changes={"brand": "Acme"})
    original = scoring.score_products
    edits = []

    def score_while_someone_edits(**kwargs):
        if not edits:
            fresh = Product.objects.get(pk=product.pk)
            product_update(product_id=product.pk, expected_version=fresh.version, changes={"brand": "Acme 2"})
            edits.append(1)
        return original(**kwargs)

    monkeypatch.setattr(scoring, "score_products", score_while_someone_edits)
    with django_capture_on_commit_callbacks(execute=False):
        assert scoring.scoring_backlog_drain(budget_seconds=0.01) == 1
    assert ScoringBacklog.objects.filter(product=product).exists()  # queued again by the edit: not deleted
    assert scoring.scoring_backlog_drain() == 1
    assert not ScoringBacklog.objects.exists()


def test_a_drain_deletes_its_rows_a_statement_per_queue_time_not_per_product(
    ml_settings, labelled_catalog, monkeypatch, django_capture_on_commit_callbacks
):
    """Rows queued together (an import's chunk, a burst) go in one DELETE; a row queued again while the batch was
    scored keeps its newer time and stays, even when it shares the batch with rows that go."""
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from mlcore.services import scoring

    ScoringBacklog.objects.all().delete()
    products = list(Product.objects.order_by("pk")[:6])
    earlier = timezone.now() - timedelta(minutes=5)
    ScoringBacklog.objects.bulk_create(
        [
            ScoringBacklog(product=p, queued_at=earlier if i < 3 else earlier + timedelta(minutes=1))
            for i, p in enumerate(products)
        ]
    )
    edited = products[4]
    original = scoring.score_products

    def score_while_someone_edits(**kwargs):
        ScoringBacklog.objects.filter(product=edited).update(queued_at=timezone.now())
        return original(**kwargs)

    monkeypatch.setattr(scoring, "score_products", score_while_someone_edits)
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False):
        assert scoring.scoring_backlog_drain(batch=10, budget_seconds=0.0001) == 6
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "mlcore_scoringbacklog"')]
    assert len(deletes) == 2, deletes
    assert list(ScoringBacklog.objects.values_list("product_id", flat=True)) == [edited.pk]


def test_the_switch_tops_up_products_created_while_the_rescore_ran(
    ml_settings, labelled_catalog, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        run = training_run_start(user=manager, epochs=3, learning_rate=5e-3, batch_size=8, max_length=16)
        training_run_execute(run_id=run.pk)
    version = ModelVersion.objects.get(pk=run.model_version_id)
    job = version.rescore_jobs.get()
    ScoringBacklog.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=False):
        late = product_create(sku="LATE-1", title="dishwasher late", brand="")
    # Queued after the job started: the drain scores it now, with the version that serves (none yet: zero-shot).
    assert scoring_backlog_drain() == 1
    assert Prediction.objects.filter(product=late, model_version=None).exists()
    # The job's id ranges were cut before it existed: the switch queues it for the new version.
    with django_capture_on_commit_callbacks(execute=False):
        rescore_job_run_here(job_id=job.pk)
    version.refresh_from_db()
    assert version.is_serving
    assert ScoringBacklog.objects.filter(product=late).exists()
    assert scoring_backlog_drain() == 1
    assert {s["source"] for s in product_suggestions(product=late)} == {"v1"}
    assert Prediction.objects.filter(model_version=version).count() == Product.objects.count()


def test_an_import_queues_what_it_created_or_whose_text_changed(
    labelled_catalog, write_file, django_capture_on_commit_callbacks
):
    from catalog.imports.products import product_import

    ScoringBacklog.objects.all().delete()
    unchanged = Product.objects.get(sku="U001")
    path = write_file("p.csv", f"sku,title\nU000,U000 renamed\nNEW-9,a new thing\nU001,{unchanged.title}\n")
    with django_capture_on_commit_callbacks(execute=False):
        report = product_import(path=path)
    assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    queued = set(ScoringBacklog.objects.values_list("product__sku", flat=True))
    assert queued == {"U000", "NEW-9"}  # not U001: nothing a model reads changed


@pytest.mark.slow
def test_a_product_created_through_the_api_has_suggestions_within_seconds_on_a_real_worker(
    ml_settings, labelled_catalog, admin_user, celery_worker, settings
):
    settings.MLCORE_SCORE_DEBOUNCE_SECONDS = 1
    from django.core.cache import cache

    cache.clear()
    rescore_job_run_here(job_id=rescore_job_start(version_id=None, enqueue=False).pk)
    api = APIClient()
    api.force_authenticate(admin_user)
    created = api.post("/api/v1/products/", {"sku": "API-1", "title": "dishwasher from the api"}, format="json")
    assert created.status_code == 201, created.content
    started = time.monotonic()
    while time.monotonic() - started < 60:
        suggestions = api.get(f"/api/v1/products/{created.json()['id']}/suggestions").json()
        if suggestions:
            break
        time.sleep(0.5)
    assert suggestions, "no suggestion a minute after the product was created"
    assert suggestions[0]["source"] == "zero-shot"


@pytest.mark.slow
def test_a_new_product_is_scored_while_the_whole_catalog_re_scores(
    ml_settings, labelled_catalog, admin_user, celery_worker, settings, monkeypatch
):
    """The debounced drain goes on the fast queue, which a scoring worker takes in turn with a long job's chunks: a
    product created while the catalog re-scores (20 minutes for 1M products on 2 cores) has suggestions in seconds."""
    from django.core.cache import cache

    from mlcore.models import RescoreChunk
    from mlcore.services import rescoring

    settings.MLCORE_SCORE_DEBOUNCE_SECONDS = 1
    cache.clear()
    rescore_job_run_here(job_id=rescore_job_start(version_id=None, enqueue=False).pk)
    settings.MLCORE_RESCORE_CHUNK_SIZE = 1  # the long job: one slow chunk per product
    score = rescoring.score_product_range

    def slow(*, version_id, first_id, last_id):
        time.sleep(0.4)
        return score(version_id=version_id, first_id=first_id, last_id=last_id)

    monkeypatch.setattr(rescoring, "score_product_range", slow)
    long = rescore_job_start(version_id=None)
    api = APIClient()
    api.force_authenticate(admin_user)
    created = api.post("/api/v1/products/", {"sku": "API-2", "title": "dishwasher mid-job"}, format="json")
    assert created.status_code == 201, created.content
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        suggestions = api.get(f"/api/v1/products/{created.json()['id']}/suggestions").json()
        if suggestions:
            break
        time.sleep(0.2)
    assert suggestions, "no suggestion a minute after the product was created"
    long.refresh_from_db()
    done = RescoreChunk.objects.filter(job=long, done=True).count()
    assert not long.is_finished, f"the drain waited for the whole re-score ({done} of {long.chunks_total})"
    assert done < long.chunks_total / 2, f"scored after {done} of {long.chunks_total} chunks"


def test_a_drain_keeps_to_its_budget_and_queues_its_sequel_on_the_fast_queue(
    ml_settings, labelled_catalog, settings, django_capture_on_commit_callbacks
):
    """A drain shares the fast queue with fast heads: it scores a slice, then queues the rest, instead of holding the
    worker for as long as the backlog lasts."""
    from unittest import mock

    from django.core.cache import cache

    from mlcore.services import scoring

    rescore_job_run_here(job_id=rescore_job_start(version_id=None, enqueue=False).pk)
    with django_capture_on_commit_callbacks(execute=False):
        for i in range(3):
            product_create(sku=f"LANE-{i}", title=f"dishwasher {i}", brand="")
    cache.clear()
    settings.MLCORE_SCORE_BUDGET_SECONDS = 0.0001  # spent after the first batch
    with mock.patch("mlcore.tasks.scoring_backlog_task.apply_async") as send:
        assert scoring.scoring_backlog_drain(batch=1) == 1
    assert ScoringBacklog.objects.count() == 2  # the rest waits for the sequel, not for beat's next minute
    send.assert_called_once()
    from config.celery import app

    assert app.amqp.router.route({}, "mlcore.tasks.scoring_backlog_task")["queue"].name == "fast"
    settings.MLCORE_SCORE_BUDGET_SECONDS = 10.0
    with mock.patch("mlcore.tasks.scoring_backlog_task.apply_async") as send:
        assert scoring.scoring_backlog_drain() == 2  # within its 10 s the backlog empties: nothing more to queue
    send.assert_not_called()


def test_a_chunk_s_scores_are_written_as_the_rows_path_writes_them(small_tree) -> None:
    """A re-scoring chunk's Scores go to PostgreSQL as one COPY text formatted column by column; what lands must be
    what the row-by-row path writes for the same predictions (nulls, the top-k JSON, floats)."""
    import numpy as np

    from mlcore.services.scoring import Scores, predictions_write

    products = [ProductFactory() for _ in range(3)]
    categories = [small_tree[name] for name in ("fridge", "dish", "phones")]
    version = ModelVersion.objects.create(number=1, base_model="test", artifact_path="-")
    scores = Scores(
        [p.pk for p in products],
        np.array([[c.pk for c in categories]] * 3, dtype=np.int64),
        np.array([[0.7, 0.2, 0.1], [0.5, 0.25, 0.25], [0.34, 0.33, 0.33]], dtype=np.float32),
        np.array([0.5, 0.25, 0.01], dtype=np.float32),
        np.array([0.8, 1.0, 1.1], dtype=np.float32),
        [(categories[0].pk, 0.9), (None, None), (small_tree["kitchen"].pk, 0.67)],
    )

    def read() -> list[tuple]:
        return [
            (
                p.product_id,
                p.top,
                p.category_id,
                p.confidence,
                p.margin,
                p.entropy,
                p.backoff_category_id,
                p.backoff_confidence,
                p.model_version_id,
            )
            for p in Prediction.objects.filter(model_version=version).order_by("product_id")
        ]

    predictions_write(rows=scores, version_id=version.pk)
    copied = read()
    Prediction.objects.filter(model_version=version).delete()
    predictions_write(rows=scores.rows(), version_id=version.pk)
    assert copied == read()
    assert copied[1][6] is None
    assert copied[1][7] is None
    assert copied[0][1] == [[categories[0].pk, 0.7], [categories[1].pk, 0.2], [categories[2].pk, 0.1]]
