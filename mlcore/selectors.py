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
    except Exception:  # the broker is down: no worker can be asked, and the panel says so
        logger.warning("could not ask the workers for their status", exc_info=True)
        return []
    workers = [
        {"name": name, **(status if isinstance(status, dict) else {})}
        for reply in replies
        for name, status in reply.items()
    ]
    workers.sort(key=lambda worker: worker["name"])
    if workers:  # "no worker answered" is asked again next time, not remembered
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


# --- a version in depth --------------------------------------------------------------------------------------------

CLASS_SORTS = {"f1": "f1", "precision": "precision", "recall": "recall", "support": "support", "delta": "delta"}


def version_report(*, version: ModelVersion, sort: str = "f1", subtree: Category | None = None) -> dict[str, Any]:
    """What a version's page shows, from what was stored when it was evaluated (no model call): the per-class table
    (with its F1 against the version it was compared with, on the same frozen test items), the confused pairs and the
    same aggregated by parent category, and the training data's counts. One category query for every path."""
    test = version.metrics.get("test", {})
    per_class: dict[str, dict[str, float]] = test.get("per_class", {})
    comparison = version.metrics.get("comparison") or {}
    before = comparison.get("per_class", {})
    pairs = test.get("confused_pairs", [])
    counts: dict[str, int] = version.data_snapshot.get("counts", {})
    ids = {int(label) for label in per_class if label.isdigit()}
    ids |= {int(label) for pair in pairs for label in pair[:2] if str(label).isdigit()}
    categories = Category.objects.in_bulk(ids)
    parents = {pk: c.parent_id for pk, c in categories.items()}
    categories.update(Category.objects.in_bulk({p for p in parents.values() if p} - set(categories)))

    def name(label: Any) -> str:
        category = categories.get(int(label)) if str(label).isdigit() else None
        return category.full_path_en if category else str(label)

    rows = []
    for label, row in per_class.items():
        category = categories.get(int(label)) if label.isdigit() else None
        if subtree is not None and (category is None or not category.path.startswith(subtree.path)):
            continue
        was = before.get(label, {}).get("f1-score")
        f1 = float(row.get("f1-score", 0.0))
        rows.append(
            {
                "label": label,
                "path": name(label),
                "precision": float(row.get("precision", 0.0)),
                "recall": float(row.get("recall", 0.0)),
                "f1": f1,
                "support": int(row.get("support", 0)),
                "before": was,
                "delta": None if was is None else f1 - float(was),
            }
        )
    key = CLASS_SORTS.get(sort, "f1")

    # Worst first for scores and deltas (what needs a look), largest first for support.
    def order(row: dict[str, Any]) -> tuple[bool, float]:
        value = row[key]
        if value is None:
            return (True, 0.0)
        return (False, -float(value) if key == "support" else float(value))

    rows.sort(key=order)
    by_parent: dict[tuple[str, str], int] = {}
    for true_label, predicted_label, n in pairs:
        t = parents.get(int(true_label)) if str(true_label).isdigit() else None
        p = parents.get(int(predicted_label)) if str(predicted_label).isdigit() else None
        key_pair = (name(t) if t else "—", name(p) if p else "—")
        by_parent[key_pair] = by_parent.get(key_pair, 0) + int(n)
    return {
        "classes": rows,
        "regressed": [r for r in rows if r["delta"] is not None and r["delta"] < -0.10 and r["support"] >= 5],
        "pairs": [{"true": name(t), "predicted": name(p), "n": n} for t, p, n in pairs[:20]],
        "pairs_by_parent": [
            {"true": t, "predicted": p, "n": n}
            for (t, p), n in sorted(by_parent.items(), key=lambda item: -item[1])[:10]
        ],
        "comparison": comparison,
        "training_labels": sum(counts.values()),
        "training_categories": len(counts),
    }


HEADLINE = (
    "n",
    "accuracy",
    "accuracy_interval",
    "macro_f1",
    "macro_f1_interval",
    "weighted_f1",
    "ece",
    "ece_uncalibrated",
    "coverage_at_95",
)


def versions_listed(*, limit: int = 20) -> list[ModelVersion]:
    """The Models page's versions with only their headline test metrics (as `headline`): the stored metrics hold a
    per-class report of every class evaluated (thousands of rows at 10k classes), which a list never reads."""
    from django.db.models.fields.json import KeyTransform

    keys = {f"h_{key}": KeyTransform(key, KeyTransform("test", "metrics")) for key in HEADLINE}
    versions = list(
        ModelVersion.objects.select_related("created_by", "activated_by")
        .defer("metrics", "data_snapshot")
        .annotate(**keys)[:limit]
    )
    for version in versions:
        version.headline = {key: getattr(version, f"h_{key}") for key in HEADLINE}  # type: ignore[attr-defined]
    return versions
