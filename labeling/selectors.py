from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Avg, Case, Count, FloatField, Min, Q, QuerySet, Value, When
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone
from django.utils.translation import gettext

from catalog.models import Category, Product
from catalog.selectors import catalog_coverage
from core.errors import NotFoundError
from labeling.estimates import Estimate, Verdicts, calibration_bins, test_precision_at
from labeling.models import (
    Annotation,
    AnnotationKind,
    ProposalAudit,
    ProposalAuditItem,
    ProposalState,
    ReclassificationBatch,
    ReclassificationGroup,
    ReclassificationProposal,
    ReviewItem,
)
from mlcore.models import Prediction


@dataclass(frozen=True)
class AnnotatorStats:
    today: int
    this_hour: int
    streak_days: int
    remaining: int


def annotator_stats(*, annotator: User) -> AnnotatorStats:
    now = timezone.localtime()
    labels = Annotation.objects.filter(annotator=annotator, kind=AnnotationKind.LABEL, undone_at__isnull=True)
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = set(
        labels.filter(created_at__gte=start_of_day - timedelta(days=60))
        .annotate(day=TruncDate("created_at"))
        .values_list("day", flat=True)
        .distinct()
    )
    streak, day = 0, now.date()
    if day not in days:  # a streak survives until the end of today
        day -= timedelta(days=1)
    while day in days:
        streak += 1
        day -= timedelta(days=1)
    return AnnotatorStats(
        today=labels.filter(created_at__gte=start_of_day).count(),
        this_hour=labels.filter(created_at__gte=now - timedelta(hours=1)).count(),
        streak_days=streak,
        remaining=Product.objects.filter(is_verified=False).count(),
    )


def last_answer(*, annotator: User) -> Annotation | None:
    return (
        Annotation.objects.select_related("product", "category")
        .filter(annotator=annotator, undone_at__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )


def review_queue() -> QuerySet[ReviewItem]:
    return ReviewItem.objects.filter(resolved_at__isnull=True).select_related(
        "product", "product__category", "suggested_category"
    )


def review_item_detail(*, item: ReviewItem) -> dict[str, Any]:
    """Every annotation of the item's product, oldest first, and the categories worth offering first, each with
    where it comes from: the annotators' answers; for a likely label error the proposed category and the current
    one (keeping it is a real answer: the check can be wrong)."""
    annotations = list(
        Annotation.objects.filter(product=item.product, undone_at__isnull=True)
        .select_related("annotator", "category")
        .order_by("created_at")
    )
    candidates: list[tuple[Category | None, str]] = []
    if item.suggested_category is not None:
        candidates += [
            (item.suggested_category, gettext("label check")),
            (item.product.category, gettext("current label")),
        ]
    candidates += [(annotation.category, gettext("annotator")) for annotation in annotations]
    offered: dict[Category, str] = {}
    for category, source in candidates:
        if category is not None:
            offered.setdefault(category, source)
    return {"annotations": annotations, "offered": list(offered.items())}


def agreement_report() -> dict[str, Any]:
    """Kappa per annotator pair, per top-level category, and each annotator's agreement with adjudicated labels."""
    from labeling.agreement import kappa_by_group, pairwise_kappa

    labels: dict[int, dict[str, int]] = {}
    paths: dict[int, str] = {}
    for product_id, username, category_id, path in Annotation.objects.filter(
        kind=AnnotationKind.LABEL, undone_at__isnull=True
    ).values_list("product_id", "annotator__username", "category_id", "category__path"):
        labels.setdefault(product_id, {})[username] = category_id
        paths.setdefault(product_id, path)
    multi = {p: answers for p, answers in labels.items() if len(answers) > 1}
    roots = {p: path.strip("/").split("/")[0] for p, path in paths.items() if p in multi}
    root_names = dict(Category.objects.filter(pk__in={int(r) for r in roots.values()}).values_list("pk", "name_en"))
    groups = {p: root_names.get(int(r), r) for p, r in roots.items()}
    adjudicated = dict(
        ReviewItem.objects.filter(resolved_category__isnull=False).values_list("product_id", "resolved_category_id")
    )
    versus: dict[str, list[bool]] = {}
    for product_id, final in adjudicated.items():
        for username, category_id in labels.get(product_id, {}).items():
            versus.setdefault(username, []).append(category_id == final)
    return {
        "pairs": pairwise_kappa(multi),
        "by_vertical": kappa_by_group(multi, groups),
        "with_adjudication": {u: (sum(v) / len(v), len(v)) for u, v in sorted(versus.items())},
        "items_with_several_answers": len(multi),
    }


# --- the admin's dashboard: labels ----------------------------------------------------------------------------------


def labels_overview(*, days: int = 14, top: int = 12) -> dict[str, Any]:
    """What the dashboard's labels panel shows, in a handful of aggregates: verified labels per category (the
    largest), answers per day, agreement on items answered twice, and what the queue can hand out."""
    from mlcore.selectors import serving_version

    per_category = list(
        Product.objects.filter(is_verified=True)
        .values("category_id", "category__full_path_en")
        .annotate(n=Count("id"))
        .order_by("-n")[:top]
    )
    since = timezone.now() - timedelta(days=days - 1)
    by_day = dict(
        Annotation.objects.filter(kind=AnnotationKind.LABEL, undone_at__isnull=True, created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    today = timezone.localdate()
    per_day = [(day, by_day.get(day, 0)) for day in (today - timedelta(days=i) for i in range(days - 1, -1, -1))]
    twice = (
        Annotation.objects.filter(kind=AnnotationKind.LABEL, undone_at__isnull=True)
        .values("product_id")
        .annotate(n=Count("id"), answers=Count("category_id", distinct=True))
        .filter(n__gte=2)
    )
    several = twice.count()
    agreeing = twice.filter(answers=1).count()
    version = serving_version()
    coverage = catalog_coverage()
    # Products the uncertainty queue can hand out: unverified ones with a prediction of the serving version, counted
    # as all its predictions less the verified products' (one index-only count and a small join, where the semi-join
    # of every unverified product took 130 ms at 200k products).
    predicted = Prediction.objects.filter(model_version=version)
    return {
        "coverage": coverage,
        "per_category": per_category,
        "per_category_max": max((row["n"] for row in per_category), default=0),
        "per_day": [
            {"day": day, "n": n, "height": round(50 * n / max(1, max(m for _, m in per_day)))} for day, n in per_day
        ],
        "per_day_max": max((n for _, n in per_day), default=0),
        "several": several,
        "agreeing": agreeing,
        "queue": {
            "uncertainty": predicted.count() - predicted.filter(product__is_verified=True).count(),
            "random": coverage["total"] - coverage["verified"],
            "review": ReviewItem.objects.filter(resolved_at__isnull=True).count(),
        },
    }


# --- reclassification --------------------------------------------------------------------------------------------

GROUP_ORDERS = {
    "size": "-n",
    "confidence": "-mean_confidence",
    "lowest": "low_confidence",
    "estimated": "estimated_precision",
}
GroupKey = tuple[str, int | None, int]


def reclassification_batches() -> QuerySet[ReclassificationBatch]:
    """Batches, newest first (counts: batches_counted, for the ones shown)."""
    return ReclassificationBatch.objects.select_related("model_version").order_by("-created_at")


def batches_counted(batches: Iterable[ReclassificationBatch]) -> list[ReclassificationBatch]:
    """The batches with n_total and n_<state> set, from one GROUP BY over the (batch, state) index: a join that
    counts every proposal per state in one aggregate costs ~10x more on a 100k-proposal batch."""
    rows = list(batches)
    counts: dict[int, dict[str, int]] = {b.pk: {} for b in rows}
    for batch_id, state, n in (
        ReclassificationProposal.objects.filter(batch_id__in=counts)
        .values_list("batch_id", "state")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        counts[batch_id][state] = n
    for batch in rows:
        for state in ProposalState.values:
            setattr(batch, f"n_{state}", counts[batch.pk].get(state, 0))
        batch.n_total = sum(counts[batch.pk].values())  # type: ignore[attr-defined]
    return rows


def reclassification_batch_get(*, batch_id: int) -> ReclassificationBatch:
    batch = reclassification_batches().filter(pk=batch_id).first()
    if batch is None:
        raise NotFoundError(f"No reclassification batch with id {batch_id}.")
    return batches_counted([batch])[0]


@dataclass(frozen=True)
class ProposalFilters:
    kind: str = ""
    state: str = ""
    subtree: Category | None = None  # the proposed category lies in it
    min_confidence: float | None = None
    max_confidence: float | None = None
    source: str = ""  # where the current category came from

    def apply(self, rows: QuerySet[ReclassificationProposal]) -> QuerySet[ReclassificationProposal]:
        if self.kind:
            rows = rows.filter(kind=self.kind)
        if self.state:
            rows = rows.filter(state=self.state)
        if self.subtree is not None:
            rows = rows.filter(to_category__path__startswith=self.subtree.path)
        if self.min_confidence is not None:
            rows = rows.filter(confidence__gte=self.min_confidence)
        if self.max_confidence is not None:
            rows = rows.filter(confidence__lte=self.max_confidence)
        if self.source:
            rows = rows.filter(product__category_source=self.source)
        return rows


def batch_promise(batch: ReclassificationBatch) -> Estimate:
    """What the batch's threshold promises: the version's precision on its frozen test items at or above it."""
    test = ((batch.model_version.metrics if batch.model_version else None) or {}).get("test", {})
    curve = test.get("precision_coverage") or []
    if not curve and abs((test.get("coverage_at_99") or {}).get("threshold", -1) - batch.threshold) < 1e-9:
        # A version trained before the curve was stored: its default threshold was chosen for 99 %, n unknown.
        return Estimate(0.99, 0, 0)
    return test_precision_at(curve, batch.threshold)


def batch_explorer(batch: ReclassificationBatch) -> list[dict[str, Any]]:
    """The explorer's rows: per threshold, the proposals counted at build time and the test set's precision."""
    return [
        {
            "threshold": row["threshold"],
            "proposals": row["proposals"],
            "estimate": Estimate(
                row["test_hits"] / row["test_n"] if row["test_n"] else None, row["test_n"], row["test_hits"]
            ),
            "current": abs(row["threshold"] - batch.threshold) < 1e-6,
        }
        for row in batch.explorer
    ]


def _estimated_precision(batch: ReclassificationBatch) -> Case | Cast:
    """Each proposal's precision as the test set's reliability bins estimate it for its confidence (averaged over
    a group in the same query); null for a version trained before the bins were stored."""
    metrics = (batch.model_version.metrics if batch.model_version else None) or {}
    bins = metrics.get("test", {}).get("reliability") or []
    if not bins:
        return Cast(Value(None), FloatField())  # typed, so that AVG over it is not ambiguous on PostgreSQL
    whens = [
        When(confidence__gt=low, confidence__lte=high, then=Value(estimate))
        for low, high, estimate in calibration_bins(bins)
    ]
    return Case(*whens, default=Value(calibration_bins(bins)[0][2]), output_field=FloatField())


def group_aggregate(rows: QuerySet[ReclassificationProposal], batch: ReclassificationBatch) -> QuerySet[Any]:
    """Proposals grouped by kind and from -> to, with what the batch page sorts by."""
    return rows.values("kind", "from_category_id", "to_category_id").annotate(
        n=Count("id"),
        mean_confidence=Avg("confidence"),
        low_confidence=Min("confidence"),
        estimated_precision=Avg(_estimated_precision(batch)),
    )


def reclassification_groups(
    *,
    batch: ReclassificationBatch,
    filters: ProposalFilters,
    order: str = "size",
    limit: int = 50,
    offset: int = 0,
    samples: int = 3,
) -> list[dict[str, Any]]:
    """Proposals grouped by kind and from -> to, with count, mean and lowest confidence, estimated precision,
    counts by state, full paths, a few sample titles and what audits measured: a page of `limit` groups."""
    rows = filters.apply(ReclassificationProposal.objects.filter(batch=batch))
    keys = ("kind", "from_category_id", "to_category_id")
    ordering = (GROUP_ORDERS.get(order, "-n"), "kind", "to_category_id", "from_category_id")
    summed = ReclassificationGroup.objects.filter(batch=batch)
    if filters == ProposalFilters() and summed.exists():
        # The whole batch: its groups were summed up when it was built.
        groups = list(
            summed.values(*keys, "n", "mean_confidence", "low_confidence", "estimated_precision").order_by(*ordering)[
                offset : offset + limit
            ]
        )
    else:
        # A filtered view (or a batch built before groups were stored): grouped now.
        groups = list(group_aggregate(rows, batch).order_by(*ordering)[offset : offset + limit])
    if not groups:
        return []
    # (kind, from) -> to ids: `to IN (...)` is an index condition on (batch, kind, from, to); ORed equalities are not.
    targets: dict[tuple[str, int | None], list[int]] = {}
    for group in groups:
        targets.setdefault((group["kind"], group["from_category_id"]), []).append(group["to_category_id"])
    shown = Q(pk__in=[])
    for (kind, from_id), to_ids in targets.items():
        shown |= proposal_group_q({"kind": kind, "from": from_id}) & Q(to_category_id__in=to_ids)
    states = {
        tuple(row[k] for k in keys): row
        for row in rows.filter(shown)
        .values(*keys)
        .annotate(
            n_unconfirmed=Count("id", filter=Q(state=ProposalState.APPROVED, confirmed_by__isnull=True)),
            **{f"n_{state}": Count("id", filter=Q(state=state)) for state in ProposalState.values},
        )
        .order_by()
    }
    for group in groups:
        group.update(states[tuple(group[k] for k in keys)])
    titles: dict[GroupKey, list[str]] = {}
    for group in groups:
        # A few titles per group shown, each from the (batch, kind, from, to) index: bounded by the page, whatever
        # the batch's size (a window over every proposal of a 100k batch is not).
        key = (group["kind"], group["from_category_id"], group["to_category_id"])
        same = {"kind": key[0], "from": key[1], "to": key[2]}
        titles[key] = list(rows.filter(proposal_group_q(same)).values_list("product__title", flat=True)[:samples])
    categories = Category.objects.in_bulk(
        {g["to_category_id"] for g in groups} | {g["from_category_id"] for g in groups if g["from_category_id"]}
    )
    audits = audit_verdicts(batch=batch)
    promise = batch_promise(batch).precision
    for group in groups:
        key = (group["kind"], group["from_category_id"], group["to_category_id"])
        group["from_category"] = categories.get(group["from_category_id"]) if group["from_category_id"] else None
        group["to_category"] = categories[group["to_category_id"]]
        group["samples"] = titles.get(key, [])
        # Crossing top-level verticals (a toy into Apparel) deserves a second look.
        source = group["from_category"]
        group["crosses_vertical"] = bool(
            source is not None and source.path.split("/")[1] != group["to_category"].path.split("/")[1]
        )
        group["needs_second"] = bool(
            settings.RECLASSIFY_TWO_PERSON and group["crosses_vertical"] and group["n_unconfirmed"]
        )
        measured = audits.get(key)
        group["audit"] = measured
        group["below_promise"] = bool(measured and measured.below(promise))
    return groups


def audit_verdicts(*, batch: ReclassificationBatch, audit: ProposalAudit | None = None) -> dict[GroupKey, Verdicts]:
    """What audits of the batch's groups measured, per group. An answer is the manager's blind one or, for an audit
    sent to annotators, the first label an annotator gave the product after the audit started. Correct: the answer
    is the proposed category or lies below it; unsure: "cannot tell", or an answer less specific than the proposal
    (it cannot say whether the deeper category is right)."""
    items = ProposalAuditItem.objects.filter(audit__batch=batch)
    if audit is not None:
        items = items.filter(audit=audit)
    rows = list(
        items.order_by("audit__created_at", "pk").values_list(
            "audit__group",
            "audit__created_at",
            "proposal_id",
            "proposal__product_id",
            "proposal__to_category__path",
            "answer__path",
            "answered_at",
        )
    )
    labels: dict[int, list[tuple[Any, str]]] = {}
    for product_id, created_at, path in (
        Annotation.objects.filter(
            product_id__in={row[3] for row in rows}, kind=AnnotationKind.LABEL, undone_at__isnull=True
        )
        .order_by("created_at")
        .values_list("product_id", "created_at", "category__path")
    ):
        labels.setdefault(product_id, []).append((created_at, path))
    tallies: dict[GroupKey, dict[str, int]] = {}
    seen: set[int] = set()
    for group, started, proposal_id, product_id, to_path, manager_answer, answered_at in rows:
        answer_path: str | None = manager_answer
        if proposal_id in seen:
            continue  # sampled by two audits of the group: counted once
        seen.add(proposal_id)
        key = (group.get("kind", ""), group.get("from"), int(group.get("to", 0)))
        tally = tallies.setdefault(key, {"correct": 0, "wrong": 0, "unsure": 0, "waiting": 0})
        if answered_at is None:
            answer_path = next((path for at, path in labels.get(product_id, []) if at >= started), None)
            if answer_path is None:
                tally["waiting"] += 1
                continue
        if answer_path is None or (to_path.startswith(answer_path) and to_path != answer_path):
            tally["unsure"] += 1
        elif answer_path.startswith(to_path):
            tally["correct"] += 1
        else:
            tally["wrong"] += 1
    return {key: Verdicts(**tally) for key, tally in tallies.items()}


def audit_get(*, audit_id: int) -> ProposalAudit:
    audit = ProposalAudit.objects.select_related("batch__model_version").filter(pk=audit_id).first()
    if audit is None:
        raise NotFoundError(f"No audit with id {audit_id}.")
    return audit


def audit_next_item(*, audit: ProposalAudit) -> ProposalAuditItem | None:
    """The next product of a blind audit the manager has not answered (the product only: not the proposal)."""
    return (
        ProposalAuditItem.objects.filter(audit=audit, answered_at__isnull=True)
        .select_related("proposal__product")
        .order_by("pk")
        .first()
    )


def batch_audits(*, batch: ReclassificationBatch) -> QuerySet[ProposalAudit]:
    return ProposalAudit.objects.filter(batch=batch).annotate(
        n=Count("items"), n_answered=Count("items", filter=Q(items__answered_at__isnull=False))
    )


def proposal_group_q(group: dict[str, Any] | None) -> Q:
    """The proposals of one group: {kind, from, to}, any of them (from None: products that had no category)."""
    group = group or {}
    q = Q()
    if group.get("kind"):
        q &= Q(kind=group["kind"])
    if "to" in group:
        q &= Q(to_category_id=group["to"])
    if "from" in group:
        q &= Q(from_category_id=group["from"]) if group["from"] is not None else Q(from_category__isnull=True)
    return q


def reclassification_proposals(
    *,
    batch: ReclassificationBatch,
    filters: ProposalFilters,
    group: dict[str, Any] | None = None,
    after: tuple[float, int] | None = None,
) -> QuerySet[ReclassificationProposal]:
    """Most confident first. `after` (confidence, id) of the last row seen pages by keyset: the thousandth page
    costs what the first does, and a decision taken meanwhile shifts nothing."""
    rows = filters.apply(ReclassificationProposal.objects.filter(batch=batch)).filter(proposal_group_q(group))
    if after is not None:
        confidence, pk = after
        rows = rows.filter(Q(confidence__lt=confidence) | Q(confidence=confidence, pk__gt=pk))
    return rows.select_related("product", "from_category", "to_category").order_by("-confidence", "pk")


def reclassification_export_rows(*, batch: ReclassificationBatch) -> Any:
    """Every proposal of a batch with its decision, for the CSV export (streamed: a batch can be 100k rows)."""
    return (
        ReclassificationProposal.objects.filter(batch=batch)
        .order_by("pk")
        .values_list(
            "pk",
            "product__sku",
            "product__title",
            "kind",
            "from_category_id",
            "from_category__full_path_en",
            "to_category_id",
            "to_category__full_path_en",
            "confidence",
            "crosses_vertical",
            "state",
            "decided_by__username",
            "decided_at",
            "confirmed_by__username",
            "note",
        )
        .iterator(chunk_size=2000)
    )


def reclassification_waiting() -> int:
    """Proposals waiting for a decision or to be applied, in batches not superseded (the Models page shows it)."""
    return ReclassificationProposal.objects.filter(
        batch__superseded_at__isnull=True, state__in=[ProposalState.PROPOSED, ProposalState.APPROVED]
    ).count()


def product_open_proposal(*, product_id: int) -> ReclassificationProposal | None:
    return (
        ReclassificationProposal.objects.filter(
            product_id=product_id,
            batch__superseded_at__isnull=True,
            state__in=[ProposalState.PROPOSED, ProposalState.APPROVED],
        )
        .select_related("batch__model_version", "from_category", "to_category")
        .order_by("-batch_id")
        .first()
    )
