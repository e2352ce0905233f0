from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db.models.functions import TruncDate
from django.utils import timezone

from catalog.models import Product
from labeling.models import Annotation, AnnotationKind


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
