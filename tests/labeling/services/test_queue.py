from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from catalog.models import CategorySource, Product
from labeling.models import Annotation, Lease, ReviewItem
from labeling.services.annotations import annotation_skip, annotation_submit
from labeling.services.queue import queue_next


@pytest.fixture
def uncertainty_only(settings):
    settings.LABELING_STRATEGY_WEIGHTS = {"uncertainty": 1.0, "disagreement": 0.0, "random": 0.0}
    settings.LABELING_DOUBLE_SHARE = 0.0
    settings.LABELING_OVERLAP = 1
    return settings


def test_the_most_uncertain_item_comes_first_and_stays_until_answered(uncertainty_only, queue_catalog, annotators):
    lease = queue_next(annotator=annotators[0], rng=random.Random(0))
    assert lease.product == queue_catalog[0]
    assert lease.strategy == "uncertainty"
    assert queue_next(annotator=annotators[0]).pk == lease.pk  # a reload shows the same item
    assert queue_next(annotator=annotators[1]).product == queue_catalog[1]  # overlap 1: the next one


def test_an_answered_item_becomes_the_label_of_record(uncertainty_only, queue_catalog, annotators, small_tree):
    annotator = annotators[0]
    lease = queue_next(annotator=annotator)
    annotation_submit(
        annotator=annotator,
        product_id=lease.product_id,
        category_id=small_tree["fridge"].pk,
        product_version=lease.product.version,
    )
    product = Product.objects.get(pk=lease.product_id)
    assert (product.category, product.category_source, product.is_verified) == (
        small_tree["fridge"],
        CategorySource.ANNOTATION,
        True,
    )
    assert queue_next(annotator=annotator).product == queue_catalog[1]


def test_a_skipped_item_never_comes_back_to_that_annotator(uncertainty_only, queue_catalog, annotators):
    first = queue_next(annotator=annotators[0])
    annotation_skip(annotator=annotators[0], product_id=first.product_id)
    assert queue_next(annotator=annotators[0]).product_id != first.product_id
    assert queue_next(annotator=annotators[1]).product_id == first.product_id  # still open for the others


def test_an_expired_lease_frees_the_item(uncertainty_only, queue_catalog, annotators):
    lease = queue_next(annotator=annotators[0])
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert queue_next(annotator=annotators[1]).product_id == lease.product_id


def test_overlap_two_agreement_and_disagreement(settings, queue_catalog, annotators, small_tree):
    settings.LABELING_STRATEGY_WEIGHTS = {"uncertainty": 1.0, "disagreement": 0.0, "random": 0.0}
    settings.LABELING_OVERLAP = 2
    settings.LABELING_DOUBLE_SHARE = 0.0
    a, b, c = annotators[:3]
    first_a, first_b = queue_next(annotator=a), queue_next(annotator=b)
    assert first_a.product_id == first_b.product_id  # the same item goes to two annotators...
    third = queue_next(annotator=c)
    assert third.product_id != first_a.product_id  # ...and no third
    annotation_skip(annotator=c, product_id=third.product_id)  # c steps aside: a and b share the next item
    annotation_submit(annotator=a, product_id=first_a.product_id, category_id=small_tree["dish"].pk)
    assert not Product.objects.get(pk=first_a.product_id).is_verified  # waits for the second answer
    annotation_submit(annotator=b, product_id=first_b.product_id, category_id=small_tree["dish"].pk)
    assert Product.objects.get(pk=first_a.product_id).is_verified

    second_a, second_b = queue_next(annotator=a), queue_next(annotator=b)
    assert second_a.product_id == second_b.product_id
    annotation_submit(annotator=a, product_id=second_a.product_id, category_id=small_tree["dish"].pk)
    annotation_submit(annotator=b, product_id=second_b.product_id, category_id=small_tree["fridge"].pk)
    assert not Product.objects.get(pk=second_a.product_id).is_verified
    assert ReviewItem.objects.filter(product_id=second_a.product_id, reason="disagreement").exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_never_exceed_overlap_nor_get_an_item_twice(
    settings, queue_catalog, annotators, small_tree
):
    """Four annotators in threads (own PostgreSQL connections) label as fast as they can, each holding the next
    item on deck as the workspace does."""
    settings.LABELING_OVERLAP = 1
    settings.LABELING_DOUBLE_SHARE = 0.3  # some items want two answers
    errors: list[BaseException] = []

    def work(annotator) -> None:
        try:
            rng = random.Random(annotator.pk)
            while True:
                lease = queue_next(annotator=annotator, rng=rng)
                if lease is None:
                    return
                queue_next(annotator=annotator, rng=rng, position=1)  # the workspace's item on deck
                annotation_submit(annotator=annotator, product_id=lease.product_id, category_id=small_tree["dish"].pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(a,)) for a in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    from labeling.services.queue import overlap

    answers = Counter(Annotation.objects.filter(kind="label").values_list("product_id", flat=True))
    pairs = Counter(Annotation.objects.values_list("product_id", "annotator_id"))
    assert max(pairs.values()) == 1  # never twice to one annotator
    for product in queue_catalog:
        assert answers[product.pk] == overlap(product.pk), product.pk  # every item, exactly its overlap
    assert Product.objects.filter(is_verified=False).count() == 0


def test_a_scoped_queue_hands_out_only_its_items(uncertainty_only, queue_catalog, annotators, small_tree, write_file):
    import uuid

    from catalog.imports.products import product_import
    from labeling.models import LabelingQueue

    # A subtree scope: the product's category (or its top suggestion) lies under Electronics.
    phone = queue_catalog[7]
    phone.category, phone.category_source = small_tree["phones"], "import"
    phone.save()
    electronics = LabelingQueue.objects.create(name="Electronics", category=small_tree["el"])
    assert queue_next(annotator=annotators[0], scope=electronics).product == phone
    assert queue_next(annotator=annotators[1], scope=electronics) is None  # overlap 1: nothing else in it

    # An import-batch scope.
    batch = uuid.uuid4()
    product_import(path=write_file("b.csv", "sku,title\nQ020,item 20 again\nNEW1,brand new\n"), batch=batch)
    fresh = LabelingQueue.objects.create(name="Last import", import_batch=batch)
    handed = {queue_next(annotator=a, scope=fresh).product.sku for a in annotators[2:4]}
    assert handed == {"Q020", "NEW1"}
