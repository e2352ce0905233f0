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
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from catalog.models import Category, CategoryChange, CategorySource, Product
from catalog.services.labels import (
    BulkResult,
    CategoryAssignment,
    categories_revert_in_bulk,
    categories_set_in_bulk,
)
from core.broker import broker_check
from core.errors import ApplicationError, ConflictError, NotFoundError
from core.jobs import JobCancelled, JobLost, JobRun, describe_failure, job_claim, job_enqueue_on_commit
from core.models import UNFINISHED, JobStatus
from core.tasks import RETRYABLE
from labeling.estimates import test_precision_at
from labeling.models import (
    OPEN_PROPOSAL_STATES,
    BatchSource,
    LabelingQueue,
    ProposalKind,
    ProposalState,
    ReclassificationAction,
    ReclassificationBatch,
    ReclassificationGroup,
    ReclassificationJob,
    ReclassificationProposal,
    ReclassificationRejection,
    ReviewItem,
    ReviewReason,
)
from labeling.selectors import ProposalFilters, group_aggregate, proposal_group_q
from mlcore.models import ModelVersion, Prediction
from mlcore.selectors import serving_version

logger = logging.getLogger(__name__)

# Proposals written, applied or undone per transaction.
CHUNK = 2000
# A version whose test set cannot reach 99 % precision at any confidence proposes nothing by default.
NO_THRESHOLD = 1.0
# Thresholds whose proposal counts a batch keeps, beside its own: the manager's threshold explorer.
EXPLORER_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


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

    def vertical(self, pk: int) -> int:
        """pk's top-level category (pk itself at the top)."""
        chain = self.ancestors(pk)
        return chain[-1] if chain else pk

    def ancestors(self, pk: int) -> list[int]:
        """pk's ancestors, nearest first (pk itself not included)."""
        out: list[int] = []
        node = self.parent.get(pk)
        while node is not None:
            out.append(node)
            node = self.parent.get(node)
        return out


def rolled_up(top: list[list[Any]], tree: Tree) -> dict[int, float]:
    """Each category's probability summed with its descendants' among the model's stored top categories."""
    rolled: dict[int, float] = {}
    for category_id, probability in top:
        for node in [int(category_id), *tree.ancestors(int(category_id))]:
            rolled[node] = rolled.get(node, 0.0) + float(probability)
    return rolled


def model_choice(top: list[list[Any]], tree: Tree, threshold: float) -> tuple[int, float] | None:
    """The deepest category whose rolled-up probability reaches `threshold` (ties: the more probable), from the
    model's stored top categories; None when not even a top-level category does."""
    return choices_at(rolled_up(top, tree), tree, [threshold])[0]


def choices_at(rolled: dict[int, float], tree: Tree, thresholds: list[float]) -> list[tuple[int, float] | None]:
    """model_choice at each threshold in one pass: categories are taken most probable first, and the best
    (deepest, then most probable) seen so far is the choice at every threshold down to the next category's."""
    ranked = sorted(rolled.items(), key=lambda item: -item[1])
    out: list[tuple[int, float] | None] = [None] * len(thresholds)
    best: tuple[int, float, int] | None = None
    i = 0
    for index in sorted(range(len(thresholds)), key=lambda k: -thresholds[k]):
        while i < len(ranked) and ranked[i][1] >= thresholds[index] - 1e-9:
            node, probability = ranked[i]
            candidate = (tree.depth.get(node, 0), probability, node)
            if best is None or candidate > best:
                best = candidate
            i += 1
        if best is not None:
            out[index] = (best[2], min(best[1], 1.0))
    return out


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


def reclassification_build_start(*, version_id: int | None) -> ReclassificationJob | None:
    """Queue building the batch of a version whose re-scoring just completed (the mlcore signal). Zero-shot
    suggestions (version_id None) propose nothing unless RECLASSIFY_ZEROSHOT_THRESHOLD is set: a pretrained encoder
    is not a model that learnt this catalog, and its threshold has no test set behind it."""
    if version_id is None:
        threshold = float(settings.RECLASSIFY_ZEROSHOT_THRESHOLD)
        if threshold <= 0:
            return None
        with transaction.atomic():
            job = ReclassificationJob.objects.create(action=ReclassificationAction.BUILD, threshold=threshold)
            job_enqueue_on_commit(job, lambda: reclassification_job_enqueue(job.pk))
        return job
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
    applying = action == ReclassificationAction.APPLY
    waiting = ReclassificationProposal.objects.filter(
        batch=batch, state=ProposalState.APPROVED if applying else ProposalState.APPLIED
    )
    waiting = waiting.filter(proposal_group_q(group))
    if not (applicable(waiting) if applying else waiting).exists():
        where = f"in batch {batch_id}{' for this group' if group else ''}"
        if applying and waiting.exists():
            raise ApplicationError(
                f"The {waiting.count()} approved proposal(s) {where} move products across top-level categories and "
                "wait for a second approver (RECLASSIFY_TWO_PERSON): another manager or an admin confirms them first."
            )
        raise ApplicationError(f"Nothing {'approved to apply' if applying else 'applied to undo'} {where}.")
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
            if job.action == ReclassificationAction.BUILD and job.moves:
                _build_from_taxonomy(run, job)
            elif job.action == ReclassificationAction.BUILD:
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
    """One transaction: a lost worker leaves nothing, and the next delivery builds it again. While building, the
    proposals every threshold of the explorer would give are counted in the same pass (one rolled-up sum per
    product), so the manager sees what moving the threshold buys before rebuilding."""
    version = job.model_version  # None: the zero-shot suggestions, at the threshold the job carries
    if job.threshold is not None:
        threshold = job.threshold
    elif version is not None:
        threshold = default_threshold(version)
    else:
        threshold = float(settings.RECLASSIFY_ZEROSHOT_THRESHOLD) or NO_THRESHOLD
    grid = sorted({*EXPLORER_THRESHOLDS, round(threshold, 6)})
    at = grid.index(round(threshold, 6))
    counts = [0] * len(grid)
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
        batch = ReclassificationBatch.objects.create(
            model_version=version, threshold=threshold, created_by=job.created_by
        )
        # A newer batch supersedes the open proposals of older ones; approvals of the very same move (product,
        # from, to, unchanged product) carry over, so rebuilding at another threshold loses no decision.
        # (A taxonomy batch is not a model's: it waits for its own decisions.)
        older = ReclassificationBatch.objects.exclude(pk=batch.pk).filter(
            superseded_at__isnull=True, source=BatchSource.MODEL
        )
        approved = {
            (p, f, t, v): (by, confirmed)
            for p, f, t, v, by, confirmed in ReclassificationProposal.objects.filter(
                batch__in=older, state=ProposalState.APPROVED
            ).values_list(
                "product_id",
                "from_category_id",
                "to_category_id",
                "product_version",
                "decided_by_id",
                "confirmed_by_id",
            )
        }
        ReclassificationProposal.objects.filter(batch__in=older, state__in=OPEN_PROPOSAL_STATES).update(
            state=ProposalState.SUPERSEDED
        )
        older.update(superseded_at=timezone.now())
        now = timezone.now()
        for product_id, top, current, product_version in rows.iterator(chunk_size=CHUNK):
            choices = choices_at(rolled_up(top, tree), tree, grid)
            for index, choice in enumerate(choices):
                if choice is None:
                    continue
                target, confidence = choice
                kind = proposal_kind(current, target, tree)
                if kind is None or rejected.get((product_id, current, target)) == product_version:
                    continue  # nothing to propose, or a manager said no and the product has not changed since
                counts[index] += 1
                if index != at:
                    continue
                decided = approved.get((product_id, current, target, product_version))
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
                        crosses_vertical=current is not None and tree.vertical(current) != tree.vertical(target),
                        **(
                            {
                                "state": ProposalState.APPROVED,
                                "decided_by_id": decided[0],
                                "confirmed_by_id": decided[1],
                                "decided_at": now,
                                "note": "approval carried over from the batch this one superseded",
                            }
                            if decided
                            else {}
                        ),
                    )
                )
            if len(proposals) >= CHUNK:
                ReclassificationProposal.objects.bulk_create(proposals)
                run.beat()
                proposals = []
        ReclassificationProposal.objects.bulk_create(proposals)
        curve = ((version.metrics if version else None) or {}).get("test", {}).get("precision_coverage") or []
        batch.explorer = [
            {"threshold": t, "proposals": n, "test_n": e.n, "test_hits": e.hits}
            for t, n, e in ((t, n, test_precision_at(curve, t)) for t, n in zip(grid, counts, strict=True))
        ]
        batch.save(update_fields=["explorer"])
        _groups_write(batch)
        total = counts[at]
        ReclassificationJob.objects.filter(pk=job.pk).update(batch=batch, done=total, total=total)
    logger.info("reclassification batch %s: %s proposals from %s at %.3f", batch.pk, total, batch.origin, threshold)


def applicable(approved: QuerySet[ReclassificationProposal]) -> QuerySet[ReclassificationProposal]:
    """Approved proposals that may be applied now: with RECLASSIFY_TWO_PERSON, a move across top-level categories
    also needs a second approver's confirmation."""
    if settings.RECLASSIFY_TWO_PERSON:
        return approved.exclude(crosses_vertical=True, confirmed_by__isnull=True)
    return approved


def _groups_write(batch: ReclassificationBatch) -> None:
    """Sum the batch's groups up once (the page sorts these), and refresh the planner's statistics of the
    proposals table: a build inserts 100k rows at once, sooner than autovacuum analyses them."""
    ReclassificationGroup.objects.bulk_create(
        (
            ReclassificationGroup(
                batch=batch,
                kind=row["kind"],
                from_category_id=row["from_category_id"],
                to_category_id=row["to_category_id"],
                n=row["n"],
                mean_confidence=row["mean_confidence"],
                low_confidence=row["low_confidence"],
                estimated_precision=row["estimated_precision"],
            )
            for row in group_aggregate(ReclassificationProposal.objects.filter(batch=batch), batch).order_by()
        ),
        batch_size=CHUNK,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f'ANALYZE "{ReclassificationProposal._meta.db_table}"')


def _proposals_of(job: ReclassificationJob) -> QuerySet[ReclassificationProposal]:
    return ReclassificationProposal.objects.filter(Q(batch_id=job.batch_id) & proposal_group_q(job.group))


def _note(job: ReclassificationJob) -> str:
    who = job.created_by.get_username() if job.created_by else "?"
    version = f"model v{job.model_version.number}" if job.model_version else "no model"
    reason = f" ({job.batch.reason})" if job.batch is not None and job.batch.reason else ""
    return f"reclassification batch {job.batch_id}{reason}, {version}, applied by {who}"


def _apply(run: JobRun, job: ReclassificationJob) -> None:
    """Approved proposals, a chunk at a time, each chunk with its proposals' new states in one transaction: a lost
    worker resumes with the proposals still approved."""
    taxonomy = job.batch is not None and job.batch.source == BatchSource.TAXONOMY
    fields = ("pk", "product_id", "product_version", "to_category_id", "keeps_verified")

    def step(rows: list[tuple[Any, ...]]) -> BulkResult:
        return categories_set_in_bulk(
            assignments=[CategoryAssignment(p, v, c, keep_verified=keep) for _, p, v, c, keep in rows],
            source=CategorySource.RECLASSIFICATION,
            actor=job.created_by,
            batch=job.change_batch,
            note=_note(job),
            # A retired category's products move whoever labelled them (the version check still guards).
            skip_verified=not taxonomy,
        )

    pending = applicable(_proposals_of(job).filter(state=ProposalState.APPROVED))
    _in_chunks(run, job, pending, fields, step, done_state=ProposalState.APPLIED)


def _undo(run: JobRun, job: ReclassificationJob) -> None:
    """Applied proposals reverted exactly; one whose product changed since stays applied and is reported."""

    def step(rows: list[tuple[Any, ...]]) -> BulkResult:
        return categories_revert_in_bulk(
            change_ids=[change for _, _, change in rows],
            actor=job.created_by,
            batch=job.change_batch,
            note=f"undo of {_note(job)}",
        )

    pending = _proposals_of(job).filter(state=ProposalState.APPLIED, change__isnull=False)
    _in_chunks(run, job, pending, ("pk", "product_id", "change_id"), step, done_state=ProposalState.UNDONE)


def _in_chunks(
    run: JobRun,
    job: ReclassificationJob,
    pending: QuerySet[ReclassificationProposal],
    fields: tuple[str, ...],
    step: Callable[[list[tuple[Any, ...]]], BulkResult],
    *,
    done_state: str,
) -> None:
    """Walk `pending` by primary key (each proposal once per run: a skipped one keeps its state), each chunk's
    catalog writes and its proposals' new states and the job's counts in one transaction."""
    ReclassificationJob.objects.filter(pk=job.pk).update(total=pending.count() + job.done + job.skipped)
    last = 0
    while True:
        rows = list(pending.filter(pk__gt=last).order_by("pk").values_list(*fields)[:CHUNK])
        if not rows:
            return
        # By the ids read, never by their range: a proposal approved while this runs was not applied by this chunk.
        chunk = pending.filter(pk__in=[row[0] for row in rows])
        last = rows[-1][0]
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Each chunk's commit need not wait for its WAL flush: a crash loses at most the last chunks whole
                # (their proposals still approved, the job resumes them), and the job's final commit flushes all.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit = off")
            result = step(rows)
            _settle(chunk, result, done_state=done_state, change_batch=job.change_batch)
            run.beat(force=True)
            job.done += len(result.changed)
            job.skipped += len(result.skipped)
            ReclassificationJob.objects.filter(pk=job.pk).update(done=job.done, skipped=job.skipped)


def _settle(
    chunk: QuerySet[ReclassificationProposal], result: BulkResult, *, done_state: str, change_batch: uuid.UUID
) -> None:
    """The chunk's proposals' new states, set-based: one UPDATE for those left alone per reason (few), then one for
    the rest (a CASE per row, as bulk_update writes, costs O(rows²) at 2,000 rows). An apply records the change it
    made, found by the job's change batch (what undo reverts); an undo keeps it, for the record."""
    now = timezone.now()
    applying = done_state == ProposalState.APPLIED
    left: dict[str, list[int]] = {}
    for product, reason in result.skipped.items():
        left.setdefault(reason, []).append(product)
    for reason, products in left.items():
        # An apply skips it (the product changed since); an undo leaves it applied.
        chunk.filter(product_id__in=products).update(
            state=ProposalState.SKIPPED if applying else ProposalState.APPLIED,
            decided_at=now,
            note=f"{done_state}: {reason}"[:200],
        )
    if not applying:
        chunk.exclude(product_id__in=list(result.skipped)).update(state=done_state, decided_at=now, note="")
        return
    if connection.vendor == "postgresql":
        # Each proposal's change id from this chunk's result, in one statement.
        pairs = list(chunk.filter(product_id__in=list(result.changed)).values_list("pk", "product_id"))
        table = ReclassificationProposal._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE \"{table}\" AS r SET state = %s, decided_at = %s, note = '', change_id = v.change "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, change) WHERE r.id = v.id",
                [done_state, now, [pk for pk, _ in pairs], [result.changed[product] for _, product in pairs]],
            )
        return
    change = CategoryChange.objects.filter(batch=change_batch, product_id=OuterRef("product_id")).order_by("-pk")
    chunk.exclude(product_id__in=list(result.skipped)).update(
        state=done_state, decided_at=now, note="", change_id=Subquery(change.values("pk")[:1])
    )


# --- decisions ---------------------------------------------------------------------------------------------------


DECISIONS = {
    "approve": ProposalState.APPROVED,
    "reject": ProposalState.REJECTED,
    "reopen": ProposalState.PROPOSED,
    "send": ProposalState.SENT,
}
DECIDABLE_STATES = (*OPEN_PROPOSAL_STATES, ProposalState.REJECTED, ProposalState.SENT)


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


def open_batch(batch_id: int) -> ReclassificationBatch:
    batch = ReclassificationBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        raise NotFoundError(f"No reclassification batch with id {batch_id}.")
    if batch.superseded_at is not None:
        raise ConflictError(f"Batch {batch_id} was superseded by a newer batch; decide there.")
    return batch


def proposals_decide(
    *,
    batch_id: int,
    decision: str,
    user: User,
    ids: list[int] | None = None,
    group: dict[str, Any] | None = None,
    filters: ProposalFilters | None = None,
) -> int:
    """Approve, reject (remembered per product, from and to until the product changes), reopen, send to the
    annotators (a labeling queue of the batch's sent products) or confirm (the second approver of moves across
    top-level categories) proposals by ids, by group or by filter (all three narrow together). Returns how many
    changed; proposals already applied or superseded are left alone."""
    if decision not in (*DECISIONS, "confirm"):
        raise ApplicationError(f"Unknown decision '{decision}': use {', '.join(DECISIONS)} or confirm.")
    batch = open_batch(batch_id)
    if ids is None and group is None and filters is None:
        raise ApplicationError("Say which proposals: ids, a group (kind, from, to) or a filter.")
    rows: QuerySet[ReclassificationProposal] = ReclassificationProposal.objects.filter(batch=batch)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    if group is not None:
        rows = rows.filter(proposal_group_q(proposal_group_clean(group)))
    if filters is not None:
        rows = filters.apply(rows)
    if decision == "confirm":
        return _confirm(rows, user)
    rows = rows.filter(state__in=DECIDABLE_STATES)
    with transaction.atomic():
        if decision == "reject":
            _remember_rejections(
                list(rows.values_list("product_id", "from_category_id", "to_category_id", "product_version")), user
            )
        elif decision in ("approve", "reopen"):
            ReclassificationRejection.objects.filter(
                product_id__in=rows.filter(state=ProposalState.REJECTED).values("product_id")
            ).delete()
        elif decision == "send":
            LabelingQueue.objects.get_or_create(
                sent_from=batch,
                defaults={
                    "name": f"Reclassification batch {batch.pk}: sent to annotators",
                    "created_by": user,
                },
            )
        changed = rows.exclude(state=DECISIONS[decision]).update(
            state=DECISIONS[decision], decided_by=user, decided_at=timezone.now(), confirmed_by=None
        )
    return changed


def _confirm(rows: QuerySet[ReclassificationProposal], user: User) -> int:
    """The second approver: another person than the one who approved."""
    waiting = rows.filter(state=ProposalState.APPROVED, confirmed_by__isnull=True)
    if not waiting.exists():
        raise ApplicationError("Nothing approved is waiting for a second approver here.")
    theirs = waiting.exclude(decided_by=user)
    if not theirs.exists():
        raise ApplicationError("You approved these yourself: another manager or an admin must confirm them.")
    return theirs.update(confirmed_by=user)


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


# --- rebuilding at another threshold ------------------------------------------------------------------------------


def reclassification_rebuild_start(*, batch_id: int, threshold: float, user: User) -> ReclassificationJob:
    """Build the version's proposals again at another threshold (the explorer showed what it gives). The new batch
    supersedes this one; approvals of the same moves carry over."""
    batch = open_batch(batch_id)
    if batch.source != BatchSource.MODEL or batch.model_version_id is None:
        raise ApplicationError("Only a model version's batch has a threshold to move.")
    if not 0.0 < threshold <= 1.0:
        raise ApplicationError("The threshold is a probability: more than 0, at most 1.")
    broker_check()
    with transaction.atomic():
        busy = ReclassificationJob.objects.filter(
            Q(batch=batch) | Q(action=ReclassificationAction.BUILD, model_version_id=batch.model_version_id),
            status__in=UNFINISHED,
        ).first()
        if busy is not None:
            raise ConflictError(f"A job on this batch is in progress (#{busy.pk}); wait for it.")
        job = ReclassificationJob.objects.create(
            action=ReclassificationAction.BUILD,
            model_version_id=batch.model_version_id,
            threshold=threshold,
            created_by=user,
        )
        job_enqueue_on_commit(job, lambda: reclassification_job_enqueue(job.pk))
    return job


# --- taxonomy changes: the products of retired categories ---------------------------------------------------------


def reclassification_taxonomy_start(
    *, moves: dict[int, int | None], reason: str, actor: User | None
) -> ReclassificationJob:
    """Queue proposals for the products filed under categories a taxonomy change retired (called inside that
    change's transaction: both commit or neither)."""
    job = ReclassificationJob.objects.create(
        action=ReclassificationAction.BUILD,
        model_version=serving_version(),
        moves={str(old): new for old, new in moves.items()},
        reason=reason[:500],
        created_by=actor if actor is not None and actor.pk else None,
    )
    job_enqueue_on_commit(job, lambda: reclassification_job_enqueue(job.pk))
    return job


def _build_from_taxonomy(run: JobRun, job: ReclassificationJob) -> None:
    """Each product filed under a retired category is proposed to its mapped or merged category (a verified label
    stays verified), else to the model's deepest sure active category, else sent to the annotators' review. One
    transaction, as a model build."""
    moves = {int(old): new for old, new in job.moves.items()}
    tree = Tree.load()
    active = set(Category.objects.filter(is_active=True).values_list("pk", flat=True))
    version = job.model_version
    threshold = default_threshold(version) if version is not None else NO_THRESHOLD
    products = list(
        Product.objects.filter(category_id__in=moves).values_list("pk", "category_id", "version").order_by("pk")
    )
    tops = (
        dict(
            Prediction.objects.filter(model_version=version, product_id__in=[p for p, _, _ in products]).values_list(
                "product_id", "top"
            )
        )
        if version is not None
        else {}
    )
    with transaction.atomic():
        batch = ReclassificationBatch.objects.create(
            source=BatchSource.TAXONOMY,
            model_version=version,
            threshold=threshold,
            reason=job.reason,
            created_by=job.created_by,
        )
        # Open proposals elsewhere for these products, or into a retired category, would move them wrongly.
        ReclassificationProposal.objects.filter(state__in=OPEN_PROPOSAL_STATES).filter(
            Q(product_id__in=[p for p, _, _ in products]) | Q(to_category_id__in=moves)
        ).update(state=ProposalState.SUPERSEDED, note="superseded by a taxonomy change")
        proposals: list[ReclassificationProposal] = []
        homeless: list[int] = []
        for product_id, current, product_version in products:
            target, confidence, mapped = moves.get(current), 1.0, True
            if target is None or target not in active:
                mapped = False
                choice = _best_active(tops.get(product_id) or [], tree, active, threshold)
                if choice is None:
                    homeless.append(product_id)
                    continue
                target, confidence = choice
            proposals.append(
                ReclassificationProposal(
                    batch=batch,
                    product_id=product_id,
                    from_category_id=current,
                    to_category_id=target,
                    kind=ProposalKind.REFINE if current in tree.ancestors(target) else ProposalKind.CHANGE,
                    confidence=confidence,
                    top=(tops.get(product_id) or [])[:3],
                    product_version=product_version,
                    crosses_vertical=tree.vertical(current) != tree.vertical(target),
                    keeps_verified=mapped,
                    note="" if mapped else "no mapping: the model's choice among active categories",
                )
            )
        ReclassificationProposal.objects.bulk_create(proposals, batch_size=CHUNK)
        _groups_write(batch)
        already = set(
            ReviewItem.objects.filter(
                product_id__in=homeless, reason=ReviewReason.RETIRED_CATEGORY, resolved_at__isnull=True
            ).values_list("product_id", flat=True)
        )
        ReviewItem.objects.bulk_create(
            ReviewItem(product_id=p, reason=ReviewReason.RETIRED_CATEGORY, note=job.reason[:500])
            for p in homeless
            if p not in already
        )
        run.beat(force=True)
        ReclassificationJob.objects.filter(pk=job.pk).update(
            batch=batch, done=len(proposals), total=len(proposals), skipped=len(homeless)
        )
    logger.info(
        "taxonomy batch %s (%s): %s proposals, %s sent to review", batch.pk, job.reason, len(proposals), len(homeless)
    )


def _best_active(top: list[list[Any]], tree: Tree, active: set[int], threshold: float) -> tuple[int, float] | None:
    """The model's deepest active category whose rolled-up probability reaches the threshold."""
    rolled = {node: p for node, p in rolled_up(top, tree).items() if node in active}
    return choices_at(rolled, tree, [threshold])[0]
