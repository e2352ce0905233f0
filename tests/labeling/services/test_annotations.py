from __future__ import annotations

import pytest

from catalog.models import CategoryChange, Product
from catalog.services.labels import product_category_set
from core.errors import ApplicationError, ConflictError
from labeling.models import Annotation, ReviewItem
from labeling.services.annotations import annotation_flag, annotation_submit, annotation_undo
from labeling.services.queue import queue_next


@pytest.fixture(autouse=True)
def _single_overlap(settings):
    settings.LABELING_OVERLAP = 1
    settings.LABELING_DOUBLE_SHARE = 0.0
    settings.LABELING_STRATEGY_WEIGHTS = {"uncertainty": 1.0, "disagreement": 0.0, "random": 0.0}


def test_undo_reverts_the_label_of_record_and_gives_the_item_back(queue_catalog, annotators, small_tree):
    annotator = annotators[0]
    lease = queue_next(annotator=annotator)
    annotation_submit(annotator=annotator, product_id=lease.product_id, category_id=small_tree["fridge"].pk)
    assert Product.objects.get(pk=lease.product_id).is_verified

    undone = annotation_undo(annotator=annotator)
    assert undone.undone_at is not None
    product = Product.objects.get(pk=lease.product_id)
    assert (product.category, product.is_verified) == (None, False)
    assert queue_next(annotator=annotator).product_id == lease.product_id  # back on screen
    annotation_submit(annotator=annotator, product_id=lease.product_id, category_id=small_tree["dish"].pk)
    assert Product.objects.get(pk=lease.product_id).category == small_tree["dish"]
    assert CategoryChange.objects.filter(product=product).count() == 3  # set, undo, set again


def test_nothing_to_undo_is_a_clear_error(annotators, db):
    with pytest.raises(ApplicationError, match="Nothing to undo"):
        annotation_undo(annotator=annotators[0])


def test_a_stale_submission_never_overwrites_a_newer_label(queue_catalog, annotators, small_tree, manager):
    lease = queue_next(annotator=annotators[0])
    shown_version = lease.product.version
    product_category_set(
        product_id=lease.product_id,
        category_id=small_tree["phones"].pk,
        expected_version=shown_version,
        source="manual",
        actor=manager,
        verified=True,
    )
    with pytest.raises(ConflictError, match="changed since you opened it"):
        annotation_submit(
            annotator=annotators[0],
            product_id=lease.product_id,
            category_id=small_tree["dish"].pk,
            product_version=shown_version,
        )
    assert Product.objects.get(pk=lease.product_id).category == small_tree["phones"]
    assert not Annotation.objects.exists()


def test_a_retried_submission_with_its_client_key_writes_once(queue_catalog, annotators, small_tree):
    lease = queue_next(annotator=annotators[0])
    first = annotation_submit(
        annotator=annotators[0], product_id=lease.product_id, category_id=small_tree["dish"].pk, client_key="k-1"
    )
    again = annotation_submit(
        annotator=annotators[0], product_id=lease.product_id, category_id=small_tree["dish"].pk, client_key="k-1"
    )
    assert first.pk == again.pk
    assert Annotation.objects.count() == 1


def test_flag_goes_to_review_and_needs_a_reason(queue_catalog, annotators):
    lease = queue_next(annotator=annotators[0])
    with pytest.raises(ApplicationError, match="Say why"):
        annotation_flag(annotator=annotators[0], product_id=lease.product_id, reason=" ")
    annotation_flag(annotator=annotators[0], product_id=lease.product_id, reason="two products in one listing")
    item = ReviewItem.objects.get(product_id=lease.product_id)
    assert (item.reason, item.note) == ("flag", "two products in one listing")
    assert queue_next(annotator=annotators[1]).product_id != lease.product_id  # under review, out of the queue


def test_retraining_starts_after_the_configured_number_of_labels(
    settings, queue_catalog, annotators, small_tree, django_capture_on_commit_callbacks, tiny_encoder
):
    from mlcore.models import TrainingRun

    settings.LABELING_RETRAIN_EVERY = 4
    settings.MLCORE_BASE_MODEL = str(tiny_encoder)
    annotator = annotators[0]
    categories = [small_tree["dish"], small_tree["fridge"]]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for i in range(4):
            lease = queue_next(annotator=annotator)
            annotation_submit(annotator=annotator, product_id=lease.product_id, category_id=categories[i % 2].pk)
    assert callbacks
    assert TrainingRun.objects.count() == 1
