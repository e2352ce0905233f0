from __future__ import annotations

import logging
from typing import Any

from catalog.models import Category, Product
from mlcore.models import ModelVersion, Prediction, RescoreJob, ScoringBacklog, TrainingRun

logger = logging.getLogger(__name__)


def serving_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_serving=True).first()


def product_confident_category(*, product: Product) -> tuple[Category, float] | None:
    """The deepest category the serving version is confident of (its back-off), if any."""
    version = serving_version()
    if version is None:
        return None
    prediction = (
        Prediction.objects.select_related("backoff_category")
        .filter(product=product, model_version=version, backoff_category__isnull=False)
        .first()
    )
    if prediction is None or prediction.backoff_category is None:
        return None
    return prediction.backoff_category, prediction.backoff_confidence or 0.0


def product_suggestions(*, product: Product, language: str | None = None) -> list[dict[str, Any]]:
    """The product's top categories, best first: from the serving version, or zero-shot before there is one."""
    version = serving_version()
    prediction = None
    if version is not None:
        prediction = Prediction.objects.filter(product=product, model_version=version).first()
    source = version.label if prediction is not None and version is not None else "zero-shot"
    if prediction is None:
        prediction = Prediction.objects.filter(product=product, model_version__isnull=True).first()
    if prediction is None:
        return []
    categories = Category.objects.in_bulk([category_id for category_id, _ in prediction.top])
    return [
        {
            "category_id": category_id,
            "path": categories[category_id].display_path(language),
            "external_id": categories[category_id].external_id,
            "confidence": confidence,
            "source": source,
        }
        for category_id, confidence in prediction.top
        if category_id in categories
    ]


# --- the admin's dashboard -----------------------------------------------------------------------------------------

WORKERS_CACHE_KEY = "mlcore:workers-status"
QUEUES = ("default", "training", "scoring")


def workers_status(*, timeout: float = 2.0) -> list[dict[str, Any]]:
    """Every live worker as it reports itself (mlcore/control.py): queues, running tasks, device. One broadcast,
    answered within `timeout`, cached for a few seconds so that a page polled by several admins asks once."""
    from celery import current_app
    from django.core.cache import cache

    cached = cache.get(WORKERS_CACHE_KEY)
    if cached is not None:
        return list(cached)
    try:
        replies = current_app.control.broadcast("shelfwise_status", reply=True, timeout=timeout) or []
    except Exception:
        return []
    workers = sorted(
        (
            {"name": name, **(status if isinstance(status, dict) else {})}
            for reply in replies
            for name, status in reply.items()
        ),
        key=lambda worker: worker["name"],
    )
    cache.set(WORKERS_CACHE_KEY, workers, timeout=10)
    return workers


def queue_lengths() -> dict[str, int | None]:
    from core.broker import queue_length

    return {queue: queue_length(queue) for queue in QUEUES}


def dashboard_jobs() -> dict[str, Any]:
    """Training runs and re-scoring jobs that are not finished, the last few that ended, and the scoring backlog."""
    from core.models import FINISHED, UNFINISHED

    light = ("losses", "evaluations")  # the curves: drawn on the Models page, not needed here
    return {
        "runs": list(TrainingRun.objects.filter(status__in=UNFINISHED).select_related("model_version").defer(*light)),
        "rescores": list(RescoreJob.objects.filter(status__in=UNFINISHED).select_related("model_version")),
        "ended_runs": list(
            TrainingRun.objects.filter(status__in=FINISHED)
            .select_related("model_version")
            .defer(*light)
            .order_by("-finished_at")[:3]
        ),
        "backlog": ScoringBacklog.objects.count(),
    }
