"""Audits of reclassification groups: blind answers by the manager or by annotators through their queue, and the
precision they measure with its Wilson interval."""

from __future__ import annotations

import pytest

from core.errors import ApplicationError, ConflictError
from labeling.estimates import wilson
from labeling.selectors import ProposalFilters, audit_verdicts, reclassification_groups
from labeling.services.proposal_audits import audit_answer, audit_start
from tests.labeling.services.test_reclassification import _build, _curve_version, _imported, _predict, _version


def test_a_blind_audit_measures_the_group_with_its_interval(small_tree, manager, django_capture_on_commit_callbacks):
    version = _curve_version(threshold=0.8)
    products = [_imported(small_tree, None, title=f"kitchen thing {i}") for i in range(6)]
    for product in products:
        _predict(version, product, [(small_tree["dish"], 0.5), (small_tree["fridge"], 0.45)])  # -> Kitchen
    batch = _build(version, django_capture_on_commit_callbacks)
    group = {"kind": "fill", "from": None, "to": small_tree["kitchen"].pk}
    audit = audit_start(batch_id=batch.pk, group=group, user=manager, size=5)
    items = list(audit.items.order_by("pk"))
    assert len(items) == 5
    answers = [small_tree["dish"], small_tree["kitchen"], small_tree["fridge"], small_tree["phones"], None]
    for item, answer in zip(items, answers, strict=True):
        audit_answer(item_id=item.pk, user=manager, category_id=answer.pk if answer else None)
    with pytest.raises(ConflictError, match="answered already"):
        audit_answer(item_id=items[0].pk, user=manager, category_id=small_tree["phones"].pk)

    verdicts = audit_verdicts(batch=batch)[("fill", None, small_tree["kitchen"].pk)]
    # Below Kitchen is right (dish, kitchen, fridge), Phones is wrong, "cannot tell" is not judged.
    assert (verdicts.correct, verdicts.wrong, verdicts.unsure) == (3, 1, 1)
    assert verdicts.precision == pytest.approx(0.75)
    assert verdicts.interval == pytest.approx(wilson(3, 4))
    groups = reclassification_groups(batch=batch, filters=ProposalFilters())
    assert groups[0]["audit"] == verdicts
    assert groups[0]["below_promise"] is True  # 0.75 < the 12/12 the threshold promised
    assert groups[0]["estimated_precision"] is not None
    with pytest.raises(ApplicationError, match="one group"):
        audit_start(batch_id=batch.pk, group={"kind": "fill"}, user=manager)


def test_an_audit_sent_to_annotators_is_their_queue_and_their_labels_are_the_answers(
    small_tree, manager, annotator, settings, django_capture_on_commit_callbacks
):
    from labeling.models import LabelingQueue
    from labeling.services.annotations import annotation_submit
    from labeling.services.queue import queue_next

    settings.LABELING_OVERLAP = 1
    settings.LABELING_DOUBLE_SHARE = 0
    version = _version()
    products = [_imported(small_tree, "phones", title=f"dishwasher {i}") for i in range(4)]
    others = [_imported(small_tree, None, title=f"other {i}") for i in range(3)]
    for product in products:
        _predict(version, product, [(small_tree["dish"], 0.95)])
    batch = _build(version, django_capture_on_commit_callbacks)
    group = {"kind": "change", "from": small_tree["phones"].pk, "to": small_tree["dish"].pk}
    audit = audit_start(batch_id=batch.pk, group=group, user=manager, audience="annotators", size=3)
    queue = LabelingQueue.objects.get(audit=audit)
    audited = set(audit.items.values_list("proposal__product_id", flat=True))
    seen = set()
    for _ in range(3):
        lease = queue_next(annotator=annotator, scope=queue)
        assert lease is not None
        assert lease.product_id in audited
        seen.add(lease.product_id)
        answer = small_tree["dish"] if len(seen) < 3 else small_tree["fridge"]
        annotation_submit(annotator=annotator, product_id=lease.product_id, category_id=answer.pk)
    assert seen == audited
    assert queue_next(annotator=annotator, scope=queue) is None  # nothing else: not the other products
    verdicts = audit_verdicts(batch=batch)[("change", small_tree["phones"].pk, small_tree["dish"].pk)]
    assert (verdicts.correct, verdicts.wrong, verdicts.waiting) == (2, 1, 0)
    assert not any(o.pk in seen for o in others)
