"""Reclassification: what a new model version proposes to change in the catalog, the manager's decisions, and
applying (or undoing) them in bulk. Nothing changes a product's category unseen: a proposal changes the catalog only
once a manager approved it and applied it, through catalog/services/labels.py.

A product is proposed when it is not verified and the model's choice differs from its category of record. The
model's choice is the deepest category whose rolled-up probability (its own plus its descendants' among the model's
stored top categories) reaches the batch threshold: a product the model is sure is a refrigerator but not which kind
is proposed to Refrigerators, not to a guessed leaf. No proposal when the choice is the current category or one of
its ancestors. Kinds: fill (no category yet), refine (a descendant of the current one), change (another branch).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from catalog.models import Category, CategorySource, Product
from catalog.services.labels import CategoryAssignment, categories_revert_in_bulk, categories_set_in_bulk
from core.broker import broker_check
from core.errors import ApplicationError, ConflictError, NotFoundError
from core.jobs import JobCancelled, JobLost, JobRun, describe_failure, job_claim, job_enqueue_on_commit
from core.models import UNFINISHED, JobStatus
from core.tasks import RETRYABLE
from labeling.models import (
    OPEN_PROPOSAL_STATES,
    ProposalKind,
    ProposalState,
    ReclassificationAction,
    ReclassificationBatch,
    ReclassificationJob,
    ReclassificationProposal,
    ReclassificationRejection,
)
from labeling.selectors import proposal_group_q
from mlcore.models import ModelVersion, Prediction

logger = logging.getLogger(__name__)

# Proposals written, applied or undone per transaction.
CHUNK = 2000
# A version whose test set cannot reach 99 % precision at any confidence proposes nothing by default.
NO_THRESHOLD = 1.0


# --- the model's choice ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    parent: dict[int, int | None]
    depth: dict[int, int]

    @classmethod
    def load(cls) -> Tree:
        parent: dict[int, int | None] = {}
        depth: dict[int, int] = {}
        for pk, parent_id, level in Category.objects.values_list("pk", "parent_id", "depth"):
            parent[pk], depth[pk] = parent_id, level
        return cls(parent=parent, depth=depth)

    def ancestors(self, pk: int) -> list[int]:
        """pk's ancestors, nearest first (pk itself not included)."""
        out: list[int] = []
        node = self.parent.get(pk)
        while node is not None:
            out.append(node)
            node = self.parent.get(node)
        return out


def model_choice(top: list[list[Any]], tree: Tree, threshold: float) -> tuple[int, float] | None:
    """The deepest category whose rolled-up probability reaches `threshold` (ties: the more probable), from the
    model's stored top categories; None when not even a top-level category does."""
    rolled: dict[int, float] = {}
    for category_id, probability in top:
        for node in [int(category_id), *tree.ancestors(int(category_id))]:
            rolled[node] = rolled.get(node, 0.0) + float(probability)
    sure = [(tree.depth.get(node, 0), p, node) for node, p in rolled.items() if p >= threshold - 1e-9]
    if not sure:
        return None
    _, probability, node = max(sure)
    return node, min(probability, 1.0)


def proposal_kind(current: int | None, choice: int, tree: Tree) -> str | None:
    """fill, refine or change; None when the choice is the current category or above it (nothing to propose)."""
    if current is None:
        return ProposalKind.FILL
    if choice == current or choice in tree.ancestors(current):
        return None
    if current in tree.ancestors(choice):
        return ProposalKind.REFINE
    return ProposalKind.CHANGE


def default_threshold(version: ModelVersion) -> float:
    """The version's confidence for 99 % precision on the frozen test set, unless RECLASSIFY_THRESHOLD is set."""
    if settings.RECLASSIFY_THRESHOLD:
        return float(settings.RECLASSIFY_THRESHOLD)
    coverage = (version.metrics or {}).get("test", {}).get("coverage_at_99") or {}
    if not coverage.get("coverage"):
        return NO_THRESHOLD
    return float(coverage.get("threshold", NO_THRESHOLD))


# --- jobs --------------------------------------------------------------------------------------------------------


def reclassification_job_enqueue(job_id: int) -> None:
    from labeling.tasks import reclassification_job_task

    reclassification_job_task.delay(job_id)


def reclassification_build_start(*, version_id: int) -> ReclassificationJob | None:
    """Queue building the batch of a version whose re-scoring just completed (the mlcore signal)."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        return None
    with transaction.atomic():
        job = ReclassificationJob.objects.create(action=ReclassificationAction.BUILD, model_version=version)
        job_enqueue_on_commit(job, lambda: reclassification_job_enqueue(job.pk))
    return job


def _start(*, batch_id: int, user: User | None, action: str, group: dict[str, Any] | None) -> ReclassificationJob:
    batch = ReclassificationBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        raise NotFoundError(f"No reclassification batch with id {batch_id}.")
    group = proposal_group_clean(group)
    waiting = ProposalState.APPROVED if action == ReclassificationAction.APPLY else ProposalState.APPLIED
    if not ReclassificationProposal.objects.filter(batch=batch, state=waiting).filter(proposal_group_q(group)).exists():
        what = "approved to apply" if action == ReclassificationAction.APPLY else "applied to undo"
        raise ApplicationError(f"Nothing {what} in batch {batch_id}{' for this group' if group else ''}.")
    broker_check()
    with transaction.atomic():
        running = ReclassificationJob.objects.filter(batch=batch, status__in=UNFINISHED).first()
        if running is not None:
            raise ConflictError(f"Batch {batch_id} already has a job in progress (#{running.pk}); wait for it.")
        job = ReclassificationJob.objects.create(
            action=action,
            model_version_id=batch.model_version_id,
            batch=batch,
            group=group,
            created_by=user if user is not None and user.pk else None,
        )
        job_enqueue_on_commit(job, lambda: reclassification_job_enqueue(job.pk))
    return job


def reclassification_apply_start(
    *, batch_id: int, user: User | None, group: dict[str, Any] | None = None
) -> ReclassificationJob:
    """Apply the batch's approved proposals (or one group's) in the background."""
    return _start(batch_id=batch_id, user=user, action=ReclassificationAction.APPLY, group=group)


def reclassification_undo_start(
    *, batch_id: int, user: User | None, group: dict[str, Any] | None = None
) -> ReclassificationJob:
    """Undo the batch's applied proposals (or one group's) exactly, in the background."""
    return _start(batch_id=batch_id, user=user, action=ReclassificationAction.UNDO, group=group)


def reclassification_job_run(*, job_id: int) -> None:
    run = job_claim(ReclassificationJob, job_id)
    if run is None:
        return
    job = run.job
    assert isinstance(job, ReclassificationJob)
    try:
        with run.keepalive():
            if job.action == ReclassificationAction.BUILD:
                _build(run, job)
            elif job.action == ReclassificationAction.APPLY:
                _apply(run, job)
            else:
                _undo(run, job)
    except JobLost:
        logger.warning("reclassification job %s was taken over; this worker stops", job_id)
        return
    except JobCancelled:
        run.finish(JobStatus.CANCELLED, error="Cancelled: what was done before stays done (undo it if needed).")
        return
    except RETRYABLE:
        raise
    except Exception as exc:
        logger.exception("reclassification job %s failed", job_id)
        run.finish(JobStatus.FAILED, error=describe_failure(exc, what=f"Reclassification ({job.action})"))
        raise
    finished = ReclassificationJob.objects.get(pk=job_id)
    run.finish(JobStatus.SUCCEEDED, done=finished.done, total=finished.total, skipped=finished.skipped)


def _build(run: JobRun, job: ReclassificationJob) -> None:
    """One transaction: a lost worker leaves nothing, and the next delivery builds it again."""
    version = job.model_version
    threshold = default_threshold(version)
    tree = Tree.load()
    rejected = {
        (product_id, from_id, to_id): version_seen
        for product_id, from_id, to_id, version_seen in ReclassificationRejection.objects.values_list(
            "product_id", "from_category_id", "to_category_id", "product_version"
        )
    }
    rows = (
        Prediction.objects.filter(model_version=version, product__is_verified=False)
        .values_list("product_id", "top", "product__category_id", "product__version")
        .order_by("product_id")
    )
    proposals: list[ReclassificationProposal] = []
    with transaction.atomic():
        batch = ReclassificationBatch.objects.create(model_version=version, threshold=threshold)
        # A newer version's batch supersedes the open proposals of older ones.
        older = ReclassificationBatch.objects.exclude(pk=batch.pk).filter(superseded_at__isnull=True)
        ReclassificationProposal.objects.filter(batch__in=older, state__in=OPEN_PROPOSAL_STATES).update(
            state=ProposalState.SUPERSEDED
        )
        older.update(superseded_at=timezone.now())
        for product_id, top, current, product_version in rows.iterator(chunk_size=CHUNK):
            choice = model_choice(top, tree, threshold)
            if choice is None:
                continue
            target, confidence = choice
            kind = proposal_kind(current, target, tree)
            if kind is None:
                continue
            if rejected.get((product_id, current, target)) == product_version:
                continue  # a manager said no, and the product has not changed since
            proposals.append(
                ReclassificationProposal(
                    batch=batch,
                    product_id=product_id,
                    from_category_id=current,
                    to_category_id=target,
                    kind=kind,
                    confidence=confidence,
                    top=top[:3],
                    product_version=product_version,
                )
            )
            if len(proposals) >= CHUNK:
                ReclassificationProposal.objects.bulk_create(proposals)
                run.beat()
                proposals = []
        ReclassificationProposal.objects.bulk_create(proposals)
        total = ReclassificationProposal.objects.filter(batch=batch).count()
        ReclassificationJob.objects.filter(pk=job.pk).update(batch=batch, done=total, total=total)
    logger.info("reclassification batch %s: %s proposals from v%s at %.3f", batch.pk, total, version.number, threshold)


def _proposals_of(job: ReclassificationJob) -> QuerySet[ReclassificationProposal]:
    return ReclassificationProposal.objects.filter(Q(batch_id=job.batch_id) & proposal_group_q(job.group))


def _note(job: ReclassificationJob) -> str:
    who = job.created_by.get_username() if job.created_by else "?"
    return f"reclassification batch {job.batch_id}, model v{job.model_version.number}, applied by {who}"


def _apply(run: JobRun, job: ReclassificationJob) -> None:
    """Approved proposals, a chunk at a time, each chunk with its proposals' new states in one transaction: a lost
    worker resumes with the proposals still approved."""
    pending = _proposals_of(job).filter(state=ProposalState.APPROVED)
    ReclassificationJob.objects.filter(pk=job.pk).update(total=pending.count() + job.done + job.skipped)
    last = 0
    while True:
        # By primary key, each proposal once per run (a skipped one keeps its state).
        chunk = list(
            pending.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "product_id", "product_version", "to_category_id")[:CHUNK]
        )
        if not chunk:
            return
        last = chunk[-1][0]
        with transaction.atomic():
            result = categories_set_in_bulk(
                assignments=[CategoryAssignment(p, v, c) for _, p, v, c in chunk],
                source=CategorySource.RECLASSIFICATION,
                actor=job.created_by,
                batch=job.change_batch,
                note=_note(job),
            )
            _settle(chunk, result.changed, result.skipped, done_state=ProposalState.APPLIED)
            run.beat(force=True)
            ReclassificationJob.objects.filter(pk=job.pk).update(
                done=job.done + len(result.changed), skipped=job.skipped + len(result.skipped)
            )
            job.done += len(result.changed)
            job.skipped += len(result.skipped)


def _undo(run: JobRun, job: ReclassificationJob) -> None:
    pending = _proposals_of(job).filter(state=ProposalState.APPLIED, change__isnull=False)
    ReclassificationJob.objects.filter(pk=job.pk).update(total=pending.count() + job.done + job.skipped)
    last = 0
    while True:
        # By primary key, each proposal once per run: one whose product changed since stays applied.
        chunk = list(pending.filter(pk__gt=last).order_by("pk").values_list("pk", "product_id", "change_id")[:CHUNK])
        if not chunk:
            return
        last = chunk[-1][0]
        with transaction.atomic():
            result = categories_revert_in_bulk(
                change_ids=[change for _, _, change in chunk],
                actor=job.created_by,
                batch=job.change_batch,
                note=f"undo of {_note(job)}",
            )
            by_product = [(pk, product, 0, 0) for pk, product, _ in chunk]
            _settle(by_product, result.changed, result.skipped, done_state=ProposalState.UNDONE)
            run.beat(force=True)
            ReclassificationJob.objects.filter(pk=job.pk).update(
                done=job.done + len(result.changed), skipped=job.skipped + len(result.skipped)
            )
            job.done += len(result.changed)
            job.skipped += len(result.skipped)


def _settle(
    chunk: list[tuple[int, int, int, int]], changed: dict[int, int], skipped: dict[int, str], *, done_state: str
) -> None:
    """The chunk's proposals' new states in one UPDATE (bulk_update writes a CASE per field). An apply records the
    change it made (what undo reverts); an undo keeps it, for the record."""
    now = timezone.now()
    applying = done_state == ProposalState.APPLIED
    rows = []
    for pk, product_id, _, _ in chunk:
        row = ReclassificationProposal(pk=pk, decided_at=now, state=done_state, note="")
        if product_id in changed:
            row.change_id = changed[product_id] if applying else None
        else:
            # Left alone: an apply skips it (the product changed since); an undo leaves it applied.
            row.state = ProposalState.SKIPPED if applying else ProposalState.APPLIED
            row.note = f"{done_state}: {skipped.get(product_id, 'skipped')}"[:200]
        rows.append(row)
    fields = ["state", "decided_at", "note", *(["change"] if applying else [])]
    ReclassificationProposal.objects.bulk_update(rows, fields)


# --- decisions ---------------------------------------------------------------------------------------------------


DECISIONS = {"approve": ProposalState.APPROVED, "reject": ProposalState.REJECTED, "reopen": ProposalState.PROPOSED}


def proposal_group_clean(group: dict[str, Any] | None) -> dict[str, Any]:
    """A group as {kind, from, to} with ids as ints (from None: the products had no category), or a clear error."""
    if not group:
        return {}
    clean: dict[str, Any] = {}
    if group.get("kind"):
        if group["kind"] not in ProposalKind.values:
            raise ApplicationError(f"Unknown kind '{group['kind']}': use fill, refine or change.")
        clean["kind"] = group["kind"]
    for key in ("from", "to"):
        if key in group:
            value = group[key]
            if value in (None, "", "none"):
                clean[key] = None
            else:
                try:
                    clean[key] = int(value)
                except (TypeError, ValueError):
                    raise ApplicationError(f"'{key}' must be a category id.") from None
    return clean


def proposals_decide(
    *,
    batch_id: int,
    decision: str,
    user: User,
    ids: list[int] | None = None,
    group: dict[str, Any] | None = None,
) -> int:
    """Approve, reject (remembered per product, from and to until the product changes) or reopen open proposals
    by ids or by group. Returns how many changed; proposals no longer open (applied, superseded) are left alone."""
    if decision not in DECISIONS:
        raise ApplicationError(f"Unknown decision '{decision}': use {', '.join(DECISIONS)}.")
    batch = ReclassificationBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        raise NotFoundError(f"No reclassification batch with id {batch_id}.")
    if batch.superseded_at is not None:
        raise ConflictError(f"Batch {batch_id} was superseded by a newer model version's batch; decide there.")
    if ids is None and group is None:
        raise ApplicationError("Say which proposals: ids, or a group (kind, from, to).")
    rows: QuerySet[ReclassificationProposal] = ReclassificationProposal.objects.filter(batch=batch).filter(
        state__in=[*OPEN_PROPOSAL_STATES, ProposalState.REJECTED]
    )
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    if group is not None:
        rows = rows.filter(proposal_group_q(proposal_group_clean(group)))
    with transaction.atomic():
        if decision == "reject":
            _remember_rejections(
                list(rows.values_list("product_id", "from_category_id", "to_category_id", "product_version")), user
            )
        elif decision in ("approve", "reopen"):
            ReclassificationRejection.objects.filter(
                product_id__in=rows.filter(state=ProposalState.REJECTED).values("product_id")
            ).delete()
        changed = rows.exclude(state=DECISIONS[decision]).update(
            state=DECISIONS[decision], decided_by=user, decided_at=timezone.now()
        )
    return changed


def _remember_rejections(decided: list[tuple[int, int | None, int, int]], user: User) -> None:
    """One memory per (product, from, to), the latest version kept. Replaced, not upserted: `from` is null for a
    fill, and a unique constraint treats nulls as distinct."""
    for start in range(0, len(decided), 500):
        part = decided[start : start + 500]
        same = Q(pk__in=[])
        for product_id, from_id, to_id, _ in part:
            from_q = Q(from_category_id=from_id) if from_id is not None else Q(from_category__isnull=True)
            same |= Q(product_id=product_id, to_category_id=to_id) & from_q
        ReclassificationRejection.objects.filter(same).delete()
        ReclassificationRejection.objects.bulk_create(
            ReclassificationRejection(
                product_id=p, from_category_id=f, to_category_id=t, product_version=v, rejected_by=user
            )
            for p, f, t, v in part
        )


def open_proposal_products() -> QuerySet[Product]:
    """Products a proposal waits on: the labeling queue leaves them to the manager's decision."""
    return Product.objects.filter(
        pk__in=ReclassificationProposal.objects.filter(state__in=OPEN_PROPOSAL_STATES).values("product_id")
    )
