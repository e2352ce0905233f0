from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext

from catalog.models import Category, Product
from labeling.models import Annotation, AnnotationKind, ReviewItem


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
