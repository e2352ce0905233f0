"""Reclassification: proposals from a version's stored predictions, decisions, apply and undo through the one door
to the category of record."""

from __future__ import annotations

import pytest

from catalog.models import CategoryChange, CategorySource, Product
from catalog.services.labels import product_category_set
from core.errors import ApplicationError, ConflictError
from core.models import JobStatus
from labeling.estimates import wilson
from labeling.models import (
    ProposalKind,
    ProposalState,
    ReclassificationBatch,
    ReclassificationJob,
    ReclassificationProposal,
)
from labeling.selectors import ProposalFilters
from labeling.services.reclassification import (
    Tree,
    model_choice,
    proposal_kind,
    proposals_decide,
    reclassification_apply_start,
    reclassification_build_start,
    reclassification_job_run,
    reclassification_rebuild_start,
    reclassification_undo_start,
)
from mlcore.models import ModelVersion, ModelVersionStatus, Prediction
from tests.factories import ProductFactory, verified_product


def _version(number: int = 1, threshold: float = 0.8) -> ModelVersion:
    ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).update(status=ModelVersionStatus.ARCHIVED)
    return ModelVersion.objects.create(
        number=number,
        base_model="x",
        status=ModelVersionStatus.ACTIVE,
        metrics={"test": {"coverage_at_99": {"coverage": 0.7, "threshold": threshold}}},
    )


def _predict(version: ModelVersion, product: Product, top: list[tuple[object, float]]) -> None:
    rows = [[category.pk, p] for category, p in top]
    Prediction.objects.create(
        product=product,
        model_version=version,
        top=rows,
        category_id=rows[0][0],
        confidence=rows[0][1],
        margin=0.1,
        entropy=0.5,
    )


def _build(version: ModelVersion, django_capture_on_commit_callbacks) -> ReclassificationBatch:
    with django_capture_on_commit_callbacks(execute=False):
        job = reclassification_build_start(version_id=version.pk)
    reclassification_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job.batch


def _imported(tree, category_key: str | None, **fields) -> Product:
    product = ProductFactory(**fields)
    if category_key:
        product = product_category_set(
            product_id=product.pk,
            category_id=tree[category_key].pk,
            expected_version=product.version,
            source=CategorySource.IMPORT,
            actor=None,
            verified=False,
        )
    return product


def test_the_choice_backs_off_to_the_deepest_sure_category(small_tree):
    tree = Tree.load()
    dish, fridge, kitchen = small_tree["dish"], small_tree["fridge"], small_tree["kitchen"]
    # Sure it is kitchen (0.5 + 0.45), not which kind: proposed to Kitchen, not to a guessed leaf.
    assert model_choice([[dish.pk, 0.5], [fridge.pk, 0.45]], tree, 0.9) == (kitchen.pk, pytest.approx(0.95))
    assert model_choice([[dish.pk, 0.93], [fridge.pk, 0.05]], tree, 0.9) == (dish.pk, pytest.approx(0.93))
    assert model_choice([[dish.pk, 0.4], [small_tree["phones"].pk, 0.4]], tree, 0.9) is None


def test_the_kinds_and_no_proposal_above_the_current_category(small_tree):
    tree = Tree.load()
    assert proposal_kind(None, small_tree["dish"].pk, tree) == ProposalKind.FILL
    assert proposal_kind(small_tree["kitchen"].pk, small_tree["dish"].pk, tree) == ProposalKind.REFINE
    assert proposal_kind(small_tree["phones"].pk, small_tree["dish"].pk, tree) == ProposalKind.CHANGE
    assert proposal_kind(small_tree["dish"].pk, small_tree["kitchen"].pk, tree) is None  # an ancestor: no
    assert proposal_kind(small_tree["dish"].pk, small_tree["dish"].pk, tree) is None


def test_a_batch_proposes_fills_refines_and_changes_never_a_verified_label(
    small_tree, manager, django_capture_on_commit_callbacks
):
    version = _version(threshold=0.8)
    none = _imported(small_tree, None, title="dishwasher a")
    kitchen = _imported(small_tree, "kitchen", title="dishwasher b")
    phone = _imported(small_tree, "phones", title="dishwasher c")
    unsure = _imported(small_tree, None, title="thing")
    same = _imported(small_tree, "dish", title="dishwasher d")
    verified = verified_product(small_tree["phones"], manager, title="dishwasher e")
    for product in (none, kitchen, phone, same, verified):
        _predict(version, product, [(small_tree["dish"], 0.9), (small_tree["fridge"], 0.05)])
    _predict(version, unsure, [(small_tree["dish"], 0.5), (small_tree["phones"], 0.4)])

    batch = _build(version, django_capture_on_commit_callbacks)
    proposals = {p.product_id: p for p in ReclassificationProposal.objects.filter(batch=batch)}
    assert batch.threshold == 0.8  # the version's confidence for 99 % precision
    assert proposals[none.pk].kind == ProposalKind.FILL
    assert proposals[kitchen.pk].kind == ProposalKind.REFINE
    assert proposals[phone.pk].kind == ProposalKind.CHANGE
    assert proposals[phone.pk].from_category_id == small_tree["phones"].pk
    assert proposals[phone.pk].confidence == pytest.approx(0.9)
    assert set(proposals) == {none.pk, kitchen.pk, phone.pk}  # not unsure, not same, never the verified one


def test_a_newer_batch_supersedes_open_proposals_and_a_rejection_is_remembered(
    small_tree, manager, django_capture_on_commit_callbacks
):
    first = _version(1)
    a = _imported(small_tree, "phones", title="dishwasher a")
    b = _imported(small_tree, "phones", title="dishwasher b")
    for product in (a, b):
        _predict(first, product, [(small_tree["dish"], 0.95)])
    old = _build(first, django_capture_on_commit_callbacks)
    rejected = ReclassificationProposal.objects.get(batch=old, product=a)
    assert proposals_decide(batch_id=old.pk, decision="reject", user=manager, ids=[rejected.pk]) == 1

    second = _version(2)
    for product in (a, b):
        _predict(second, product, [(small_tree["dish"], 0.95)])
    new = _build(second, django_capture_on_commit_callbacks)
    old.refresh_from_db()
    assert old.superseded_at is not None
    assert ReclassificationProposal.objects.get(batch=old, product=b).state == ProposalState.SUPERSEDED
    # The rejected move is not proposed again while the product is unchanged...
    assert list(ReclassificationProposal.objects.filter(batch=new).values_list("product_id", flat=True)) == [b.pk]
    with pytest.raises(ConflictError, match="superseded"):
        proposals_decide(batch_id=old.pk, decision="approve", user=manager, ids=[rejected.pk])

    # ...and is again once the product changed.
    a.title = "dishwasher a, renamed"
    Product.objects.filter(pk=a.pk).update(version=a.version + 1)
    third = _version(3)
    _predict(third, a, [(small_tree["dish"], 0.95)])
    latest = _build(third, django_capture_on_commit_callbacks)
    assert ReclassificationProposal.objects.filter(batch=latest, product=a).exists()


def test_apply_then_undo_exactly_skipping_products_changed_since(
    small_tree, manager, settings, django_capture_on_commit_callbacks
):
    version = _version()
    products = [_imported(small_tree, "phones", title=f"dishwasher {i}") for i in range(5)]
    for product in products:
        _predict(version, product, [(small_tree["dish"], 0.95)])
    batch = _build(version, django_capture_on_commit_callbacks)
    assert proposals_decide(batch_id=batch.pk, decision="approve", user=manager, group={"kind": "change"}) == 5
    # Someone edits product 0's category after the proposal was made: apply must not overwrite it.
    changed = products[0]
    product_category_set(
        product_id=changed.pk,
        category_id=small_tree["fridge"].pk,
        expected_version=Product.objects.get(pk=changed.pk).version,
        source=CategorySource.MANUAL,
        actor=manager,
        verified=True,
    )

    with django_capture_on_commit_callbacks(execute=False):
        job = reclassification_apply_start(batch_id=batch.pk, user=manager)
    reclassification_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done, job.skipped) == (JobStatus.SUCCEEDED, 4, 1)
    assert Product.objects.get(pk=changed.pk).category_id == small_tree["fridge"].pk
    moved = Product.objects.filter(pk__in=[p.pk for p in products[1:]])
    assert set(moved.values_list("category_id", "category_source", "is_verified")) == {
        (small_tree["dish"].pk, CategorySource.RECLASSIFICATION, False)
    }
    audit = CategoryChange.objects.filter(batch=job.change_batch)
    assert audit.count() == 4
    assert {c.actor_id for c in audit} == {manager.pk}
    assert "reclassification batch" in audit.first().note
    skipped = ReclassificationProposal.objects.get(batch=batch, product=changed)
    assert skipped.state == ProposalState.SKIPPED
    assert "changed since" in skipped.note

    # Product 1 is changed again after the apply: undo leaves it alone and reverts the rest exactly.
    later = products[1]
    product_category_set(
        product_id=later.pk,
        category_id=small_tree["fridge"].pk,
        expected_version=Product.objects.get(pk=later.pk).version,
        source=CategorySource.MANUAL,
        actor=manager,
        verified=True,
    )
    with django_capture_on_commit_callbacks(execute=False):
        undo = reclassification_undo_start(batch_id=batch.pk, user=manager)
    reclassification_job_run(job_id=undo.pk)
    undo.refresh_from_db()
    assert (undo.status, undo.done, undo.skipped) == (JobStatus.SUCCEEDED, 3, 1)
    restored = Product.objects.filter(pk__in=[p.pk for p in products[2:]])
    assert set(restored.values_list("category_id", "category_source", "is_verified")) == {
        (small_tree["phones"].pk, CategorySource.IMPORT, False)
    }
    assert Product.objects.get(pk=later.pk).category_id == small_tree["fridge"].pk
    assert ReclassificationProposal.objects.filter(batch=batch, state=ProposalState.UNDONE).count() == 3


def test_one_job_per_batch_at_a_time_and_clear_errors(small_tree, manager, django_capture_on_commit_callbacks):
    version = _version()
    product = _imported(small_tree, "phones", title="dishwasher")
    _predict(version, product, [(small_tree["dish"], 0.95)])
    batch = _build(version, django_capture_on_commit_callbacks)
    with pytest.raises(ApplicationError, match="Nothing approved to apply"):
        reclassification_apply_start(batch_id=batch.pk, user=manager)
    with pytest.raises(ApplicationError, match="Nothing applied to undo"):
        reclassification_undo_start(batch_id=batch.pk, user=manager)
    proposals_decide(batch_id=batch.pk, decision="approve", user=manager, group={"kind": "change"})
    with django_capture_on_commit_callbacks(execute=False):
        reclassification_apply_start(batch_id=batch.pk, user=manager)
        with pytest.raises(ConflictError, match="already has a job"):
            reclassification_apply_start(batch_id=batch.pk, user=manager)
    with pytest.raises(ApplicationError, match="Unknown decision"):
        proposals_decide(batch_id=batch.pk, decision="maybe", user=manager, ids=[1])
    with pytest.raises(ApplicationError, match="Say which"):
        proposals_decide(batch_id=batch.pk, decision="approve", user=manager)
    assert ReclassificationJob.objects.filter(batch=batch, action__in=["apply", "undo"]).count() == 1


def test_a_completed_rescore_queues_the_batch(
    ml_settings, labelled_catalog, manager, django_capture_on_commit_callbacks
):
    """The mlcore signal at the switch builds the version's proposals (labeling listens; mlcore never imports it)."""
    from mlcore.services.rescoring import rescore_job_run_here, rescore_job_start
    from mlcore.services.training import training_run_execute, training_run_start

    with django_capture_on_commit_callbacks(execute=False):
        run = training_run_start(user=manager, epochs=3, learning_rate=5e-3, batch_size=8, max_length=16)
        training_run_execute(run_id=run.pk)
    version = ModelVersion.objects.get(training_run=run)
    job = rescore_job_start(version_id=version.pk, enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        rescore_job_run_here(job_id=job.pk)
    assert ReclassificationJob.objects.filter(model_version=version, action="build").exists()


# --- the threshold explorer, rebuilding, two-person rule, audits, sending to annotators -----------------------------


def _curve_version(number: int = 1, threshold: float = 0.8) -> ModelVersion:
    """A version whose frozen test set said: at >= 0.9, 9 of 9 right; at >= 0.6, 14 of 16; at >= 0.3, 17 of 22."""
    version = _version(number, threshold)
    version.metrics["test"]["precision_coverage"] = [
        {"threshold": 0.95, "n": 9, "hits": 9, "coverage": 0.4},
        {"threshold": 0.8, "n": 12, "hits": 12, "coverage": 0.55},
        {"threshold": 0.6, "n": 16, "hits": 14, "coverage": 0.7},
        {"threshold": 0.3, "n": 22, "hits": 17, "coverage": 1.0},
    ]
    version.metrics["test"]["reliability"] = [
        {"low": i / 10, "high": (i + 1) / 10, "n": 0, "hits": 0, "confidence": (i + 0.5) / 10} for i in range(9)
    ] + [{"low": 0.9, "high": 1.0, "n": 9, "hits": 9, "confidence": 0.97}]
    version.save()
    return version


def test_the_explorer_counts_every_threshold_and_a_rebuild_keeps_approvals(
    small_tree, manager, django_capture_on_commit_callbacks
):
    version = _curve_version(threshold=0.8)
    sure = [_imported(small_tree, "phones", title=f"dishwasher {i}") for i in range(3)]
    for product in sure:
        _predict(version, product, [(small_tree["dish"], 0.95)])
    middling = [_imported(small_tree, None, title=f"fridge {i}") for i in range(2)]
    for product in middling:
        _predict(version, product, [(small_tree["fridge"], 0.65), (small_tree["phones"], 0.3)])
    batch = _build(version, django_capture_on_commit_callbacks)
    rows = {row["threshold"]: row for row in batch.explorer}
    assert rows[0.8]["proposals"] == 3 == batch.proposals.count()
    assert rows[0.6]["proposals"] == 5
    assert rows[0.99]["proposals"] == 0
    # What each threshold gave on the test set, as counts (the page puts a Wilson interval on them).
    assert (rows[0.8]["test_n"], rows[0.8]["test_hits"]) == (12, 12)
    assert (rows[0.6]["test_n"], rows[0.6]["test_hits"]) == (16, 14)

    approved = ReclassificationProposal.objects.get(batch=batch, product=sure[0])
    proposals_decide(batch_id=batch.pk, decision="approve", user=manager, ids=[approved.pk])
    with django_capture_on_commit_callbacks(execute=False):
        job = reclassification_rebuild_start(batch_id=batch.pk, threshold=0.6, user=manager)
    reclassification_job_run(job_id=job.pk)
    job.refresh_from_db()
    rebuilt = job.batch
    assert rebuilt.threshold == 0.6
    assert rebuilt.proposals.count() == 5
    assert rebuilt.proposals.get(product=sure[0]).state == ProposalState.APPROVED  # the decision carried over
    assert rebuilt.proposals.get(product=sure[0]).decided_by == manager
    batch.refresh_from_db()
    assert batch.superseded_at is not None
    with pytest.raises(ApplicationError, match="probability"):
        reclassification_rebuild_start(batch_id=rebuilt.pk, threshold=1.5, user=manager)


def test_moves_across_verticals_need_a_second_approver(
    small_tree, manager, settings, django_capture_on_commit_callbacks
):
    from accounts.roles import Role
    from tests.factories import UserFactory

    settings.RECLASSIFY_TWO_PERSON = True
    version = _version()
    across = _imported(small_tree, "phones", title="dishwasher a")  # Electronics -> Home & Garden
    within = _imported(small_tree, "kitchen", title="dishwasher b")  # Kitchen -> Dishwashers
    for product in (across, within):
        _predict(version, product, [(small_tree["dish"], 0.95)])
    batch = _build(version, django_capture_on_commit_callbacks)
    assert batch.proposals.get(product=across).crosses_vertical is True
    assert batch.proposals.get(product=within).crosses_vertical is False

    proposals_decide(batch_id=batch.pk, decision="approve", user=manager, group={"kind": "change"})
    with pytest.raises(ApplicationError, match="second approver"):
        reclassification_apply_start(batch_id=batch.pk, user=manager)
    with pytest.raises(ApplicationError, match="another manager or an admin"):
        proposals_decide(batch_id=batch.pk, decision="confirm", user=manager, group={"kind": "change"})
    second = UserFactory(username="mgr2", role=Role.CATALOG_MANAGER)
    assert proposals_decide(batch_id=batch.pk, decision="confirm", user=second, group={"kind": "change"}) == 1
    with django_capture_on_commit_callbacks(execute=False):
        job = reclassification_apply_start(batch_id=batch.pk, user=second)
    reclassification_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done) == (JobStatus.SUCCEEDED, 1)
    assert Product.objects.get(pk=across.pk).category_id == small_tree["dish"].pk


def test_an_approved_move_across_verticals_waits_in_a_mixed_apply(
    small_tree, manager, settings, django_capture_on_commit_callbacks
):
    settings.RECLASSIFY_TWO_PERSON = True
    version = _version()
    across = _imported(small_tree, "phones", title="dishwasher a")
    within = _imported(small_tree, "kitchen", title="dishwasher b")
    for product in (across, within):
        _predict(version, product, [(small_tree["dish"], 0.95)])
    batch = _build(version, django_capture_on_commit_callbacks)
    proposals_decide(
        batch_id=batch.pk, decision="approve", user=manager, ids=list(batch.proposals.values_list("pk", flat=True))
    )
    with django_capture_on_commit_callbacks(execute=False):
        job = reclassification_apply_start(batch_id=batch.pk, user=manager)
    reclassification_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.done == 1
    assert batch.proposals.get(product=across).state == ProposalState.APPROVED  # still waiting, not applied
    assert Product.objects.get(pk=across.pk).category_id == small_tree["phones"].pk


def test_sending_proposals_to_annotators_queues_those_products(
    small_tree, manager, annotator, settings, django_capture_on_commit_callbacks
):
    from labeling.models import LabelingQueue
    from labeling.services.queue import queue_next

    version = _version()
    sent = _imported(small_tree, "phones", title="dishwasher sent")
    kept = _imported(small_tree, "phones", title="dishwasher kept")
    for product in (sent, kept):
        _predict(version, product, [(small_tree["dish"], 0.95)])
    batch = _build(version, django_capture_on_commit_callbacks)
    proposal = batch.proposals.get(product=sent)
    assert proposals_decide(batch_id=batch.pk, decision="send", user=manager, ids=[proposal.pk]) == 1
    proposal.refresh_from_db()
    assert proposal.state == ProposalState.SENT
    queue = LabelingQueue.objects.get(sent_from=batch)
    lease = queue_next(annotator=annotator, scope=queue)
    assert lease is not None
    assert lease.product_id == sent.pk
    # Sent is not approved: applying has nothing to do.
    with pytest.raises(ApplicationError, match="Nothing approved"):
        reclassification_apply_start(batch_id=batch.pk, user=manager)


def test_decisions_by_filter(small_tree, manager, django_capture_on_commit_callbacks):
    version = _version()
    products = [_imported(small_tree, "phones", title=f"dishwasher {i}") for i in range(3)]
    for i, product in enumerate(products):
        _predict(version, product, [(small_tree["dish"], 0.85 + 0.05 * i)])
    batch = _build(version, django_capture_on_commit_callbacks)
    changed = proposals_decide(
        batch_id=batch.pk, decision="reject", user=manager, filters=ProposalFilters(max_confidence=0.9)
    )
    assert changed == 2
    assert batch.proposals.filter(state=ProposalState.REJECTED).count() == 2


def test_wilson_interval_known_values():
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(20, 20)[0] == pytest.approx(0.8389, abs=1e-4)
    low, high = wilson(19, 20)
    assert (low, high) == (pytest.approx(0.7639, abs=1e-4), pytest.approx(0.9911, abs=1e-4))


# --- taxonomy changes propose too ------------------------------------------------------------------------------------


def _run_taxonomy_jobs() -> ReclassificationBatch:
    job = ReclassificationJob.objects.filter(action="build").exclude(moves={}).latest("created_at")
    reclassification_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job.batch


def test_a_merge_proposes_its_products_to_the_target_and_keeps_verified_labels(
    small_tree, manager, django_capture_on_commit_callbacks
):
    from catalog.models import Category, TaxonomyChange
    from catalog.services.taxonomy import category_merge

    imported = _imported(small_tree, "fridge", title="fridge a")
    verified = verified_product(small_tree["fridge"], manager, title="fridge b")
    untouched = _imported(small_tree, "dish", title="dishwasher")
    with django_capture_on_commit_callbacks(execute=False):
        category_merge(category_id=small_tree["fridge"].pk, into_id=small_tree["kitchen"].pk, actor=manager)
    assert not Category.objects.get(pk=small_tree["fridge"].pk).is_active
    change = TaxonomyChange.objects.get(category=small_tree["fridge"])
    assert (change.kind, change.replacement_id, change.actor_id) == ("merge", small_tree["kitchen"].pk, manager.pk)
    # Nothing moved yet: the products wait for a manager's decision.
    assert Product.objects.get(pk=imported.pk).category_id == small_tree["fridge"].pk

    batch = _run_taxonomy_jobs()
    assert batch.source == "taxonomy"
    assert "merged" in batch.reason
    proposals = {p.product_id: p for p in batch.proposals.all()}
    assert set(proposals) == {imported.pk, verified.pk}  # verified labels too: their category is gone
    assert proposals[imported.pk].to_category_id == small_tree["kitchen"].pk
    assert untouched.pk not in proposals

    proposals_decide(batch_id=batch.pk, decision="approve", user=manager, group={"kind": "change"})
    with django_capture_on_commit_callbacks(execute=False):
        job = reclassification_apply_start(batch_id=batch.pk, user=manager)
    reclassification_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.done, job.skipped) == (2, 0)
    moved = Product.objects.get(pk=verified.pk)
    assert (moved.category_id, moved.is_verified) == (small_tree["kitchen"].pk, True)  # the same decision, renamed
    assert Product.objects.get(pk=imported.pk).is_verified is False

    from core.errors import ApplicationError as Refused

    with pytest.raises(Refused, match="descendants"):
        category_merge(category_id=small_tree["home"].pk, into_id=small_tree["dish"].pk)
    with pytest.raises(Refused, match="archived"):
        category_merge(category_id=small_tree["dish"].pk, into_id=small_tree["fridge"].pk)


def test_archiving_proposes_the_models_choice_or_sends_to_review(
    small_tree, manager, django_capture_on_commit_callbacks
):
    from catalog.services.taxonomy import category_update
    from labeling.models import ReviewItem

    version = _version(threshold=0.8)
    ModelVersion.objects.filter(pk=version.pk).update(is_serving=True)
    sure = _imported(small_tree, "fridge", title="fridge sure")
    unsure = _imported(small_tree, "fridge", title="fridge unsure")
    _predict(version, sure, [(small_tree["fridge"], 0.6), (small_tree["dish"], 0.35)])  # Kitchen 0.95, active
    _predict(version, unsure, [(small_tree["fridge"], 0.5), (small_tree["phones"], 0.5)])
    with django_capture_on_commit_callbacks(execute=False):
        category_update(category_id=small_tree["fridge"].pk, is_active=False, actor=manager)
    batch = _run_taxonomy_jobs()
    proposal = batch.proposals.get()
    assert (proposal.product_id, proposal.to_category_id) == (sure.pk, small_tree["kitchen"].pk)
    assert proposal.keeps_verified is False
    review = ReviewItem.objects.get(product=unsure)
    assert review.reason == "retired_category"


def test_import_taxonomy_with_a_mapping_file_proposes_the_new_categories(
    small_tree, manager, write_file, django_capture_on_commit_callbacks
):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from catalog.models import Category

    product = _imported(small_tree, "fridge", title="fridge")
    release = write_file(
        "taxonomy.csv",
        "id,parent_id,name\nhg,,Home & Garden\nhg-11,hg,Kitchen\nhg-11-3,hg-11,Refrigerators\n",
    )
    bad = write_file("bad.csv", "old_id,new_id\nhg-11-2,hg-11-99\n")
    with pytest.raises(CommandError):
        call_command("import_taxonomy", str(release), "--mapping", str(bad), "--release", "2025-01")
    assert not Category.objects.filter(external_id="hg-11-3").exists()  # nothing written

    mapping = write_file("mapping.csv", "old_id,new_id\ngid://shopify/TaxonomyCategory/hg-11-2,hg-11-3\n")
    with django_capture_on_commit_callbacks(execute=False):
        call_command("import_taxonomy", str(release), "--mapping", str(mapping), "--release", "2025-01")
    refrigerators = Category.objects.get(external_id="hg-11-3")
    assert not Category.objects.get(external_id="hg-11-2").is_active
    batch = _run_taxonomy_jobs()
    proposal = batch.proposals.get()
    assert (proposal.product_id, proposal.to_category_id, proposal.kind) == (
        product.pk,
        refrigerators.pk,
        ProposalKind.CHANGE,
    )


def test_a_model_batch_does_not_supersede_a_taxonomy_batch(small_tree, manager, django_capture_on_commit_callbacks):
    from catalog.services.taxonomy import category_merge

    _imported(small_tree, "fridge", title="fridge")
    with django_capture_on_commit_callbacks(execute=False):
        category_merge(category_id=small_tree["fridge"].pk, into_id=small_tree["kitchen"].pk, actor=manager)
    taxonomy = _run_taxonomy_jobs()
    version = _version()
    product = _imported(small_tree, "phones", title="dishwasher")
    _predict(version, product, [(small_tree["dish"], 0.95)])
    _build(version, django_capture_on_commit_callbacks)
    taxonomy.refresh_from_db()
    assert taxonomy.superseded_at is None
    assert taxonomy.proposals.get().state == ProposalState.PROPOSED
    with pytest.raises(ApplicationError, match="threshold to move"):
        reclassification_rebuild_start(batch_id=taxonomy.pk, threshold=0.5, user=manager)


def test_zero_shot_suggestions_propose_only_when_a_setting_turns_it_on(
    small_tree, settings, django_capture_on_commit_callbacks
):
    product = _imported(small_tree, "phones", title="dishwasher")
    Prediction.objects.create(
        product=product,
        model_version=None,
        top=[[small_tree["dish"].pk, 0.97]],
        category=small_tree["dish"],
        confidence=0.97,
        margin=0.9,
        entropy=0.1,
    )
    settings.RECLASSIFY_ZEROSHOT_THRESHOLD = 0.0
    assert reclassification_build_start(version_id=None) is None  # off by default
    settings.RECLASSIFY_ZEROSHOT_THRESHOLD = 0.99
    with django_capture_on_commit_callbacks(execute=False):
        job = reclassification_build_start(version_id=None)
    reclassification_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.batch.proposals.count() == 0  # 0.97 is below its own, higher threshold
    settings.RECLASSIFY_ZEROSHOT_THRESHOLD = 0.95
    with django_capture_on_commit_callbacks(execute=False):
        job = reclassification_build_start(version_id=None)
    reclassification_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.batch.proposals.get().to_category_id == small_tree["dish"].pk
    assert job.batch.origin == "zero-shot"
