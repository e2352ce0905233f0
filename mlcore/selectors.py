from __future__ import annotations

import logging
from typing import Any

from django.db.models import QuerySet

from catalog.models import Category, Product
from mlcore.models import ModelVersion, ModelVersionStatus, Prediction, RescoreJob, ScoringBacklog, TrainingRun

logger = logging.getLogger(__name__)


def serving_version() -> ModelVersion | None:
    """The version whose predictions serve. Its metrics and data snapshot load only if read: every workspace item
    and suggestion asks for the serving version, and at 5,000 classes those weigh a megabyte."""
    return ModelVersion.objects.defer("metrics", "data_snapshot").filter(is_serving=True).first()


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


def product_suggestions(
    *, product: Product, language: str | None = None, evidence: bool = False
) -> list[dict[str, Any]]:
    """The product's top categories, best first: from the serving version, or zero-shot before there is one. With
    `evidence`, each carries the verified products nearest to this one in its category (suggestion_evidence)."""
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
    nearest = (
        suggestion_evidence(product_id=product.pk, category_ids=[c for c, _ in prediction.top]) if evidence else {}
    )
    return [
        {
            "category_id": category_id,
            "path": categories[category_id].display_path(language),
            "external_id": categories[category_id].external_id,
            "confidence": confidence,
            "source": source,
            "evidence": nearest.get(category_id, []),
        }
        for category_id, confidence in prediction.top
        if category_id in categories
    ]


# Verified products read per suggested category to find the nearest (the most recently changed first): exact cosine
# over a few thousand float16 vectors costs a millisecond or two, so no approximate index is needed at this size.
EVIDENCE_CANDIDATES = 2000


def suggestion_evidence(*, product_id: int, category_ids: list[int], k: int = 3) -> dict[int, list[dict[str, Any]]]:
    """For each category, the `k` verified products filed there whose stored embeddings are nearest to this
    product's: the labels that support a suggestion (title, similarity). Empty where the product or the category's
    verified products have no embedding yet (they get one when zero-shot or a fast version scores them)."""
    import numpy as np

    from mlcore.models import ProductEmbedding
    from mlcore.services.embeddings import encoder_key

    key = encoder_key()
    own = ProductEmbedding.objects.filter(product_id=product_id, encoder=key).values_list("vector", flat=True).first()
    if own is None:
        return {}
    x = np.frombuffer(bytes(own), dtype=np.float16).astype(np.float32)
    out: dict[int, list[dict[str, Any]]] = {}
    for category_id in dict.fromkeys(category_ids):
        rows = list(
            ProductEmbedding.objects.filter(encoder=key, product__is_verified=True, product__category_id=category_id)
            .exclude(product_id=product_id)
            .order_by("-product__updated_at")
            .values_list("product_id", "product__title", "vector")[:EVIDENCE_CANDIDATES]
        )
        if not rows:
            continue
        vectors = np.vstack([np.frombuffer(bytes(vector), dtype=np.float16) for *_, vector in rows]).astype(np.float32)
        similarity = vectors @ x
        best = np.argsort(-similarity)[:k]
        out[category_id] = [
            {"product_id": rows[i][0], "title": rows[i][1], "similarity": float(similarity[i])} for i in best
        ]
    return out


# --- the admin's dashboard -----------------------------------------------------------------------------------------

WORKERS_CACHE_KEY = "mlcore:workers-status"
QUEUES = ("fast", "default", "training", "scoring")


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
    # "No worker answered" is remembered too, for less time: asking again costs the whole timeout, and a panel
    # polled by several admins would wait that long on every poll while the workers are down.
    cache.set(WORKERS_CACHE_KEY, workers, timeout=10 if workers else 5)
    return workers


def queues_without_worker(workers: list[dict[str, Any]]) -> list[str]:
    """The queues no answering worker takes: their tasks wait until one does (a worker started with an older
    `-Q` list leaves `fast` unserved, and labels then never make a fast version). Empty when no worker answered:
    the panel says that instead."""
    if not workers:
        return []
    taken = {queue for worker in workers for queue in worker.get("queues", [])}
    return [queue for queue in QUEUES if queue not in taken]


def queue_lengths() -> dict[str, int | None]:
    from core.broker import queue_length

    return {queue: queue_length(queue) for queue in QUEUES}


def dashboard_jobs() -> dict[str, Any]:
    """Training runs and re-scoring jobs that are not finished, the last few that ended, and the scoring backlog."""
    from core.models import FINISHED, UNFINISHED

    light = ("losses", "evaluations", *VERSION_HEAVY)  # the curves: drawn on the Models page, not needed here
    return {
        "runs": list(TrainingRun.objects.filter(status__in=UNFINISHED).select_related("model_version").defer(*light)),
        "rescores": list(
            RescoreJob.objects.filter(status__in=UNFINISHED).select_related("model_version").defer(*VERSION_HEAVY)
        ),
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


CLASSES_PER_PAGE = 100


def version_report(
    *, version: ModelVersion, sort: str = "f1", subtree: Category | None = None, page: int = 1
) -> dict[str, Any]:
    """What a version's page shows, from what was stored when it was evaluated (no model call): the per-class table
    (with its F1 against the version it was compared with, on the same frozen test items), sorted over every class and
    shown CLASSES_PER_PAGE rows at a time (5,000 rows are a megabyte of HTML nobody scrolls), the confused pairs and the
    same aggregated by parent category, and the training data's counts. Category paths are read for what is shown
    (a page of rows, the pairs and their parents), as tuples: sorting needs only the stored scores, and a subtree
    only the ids under it."""
    test = version.metrics.get("test", {})
    per_class: dict[str, dict[str, float]] = test.get("per_class", {})
    comparison = version.metrics.get("comparison") or {}
    before = comparison.get("per_class", {})
    pairs = test.get("confused_pairs", [])
    within: set[str] | None = None
    if subtree is not None:
        within = {str(pk) for pk in Category.objects.filter(path__startswith=subtree.path).values_list("pk", flat=True)}
    rows: list[dict[str, Any]] = []
    for label, row in per_class.items():
        if within is not None and label not in within:
            continue
        was = before.get(label, {}).get("f1-score")
        f1 = float(row.get("f1-score", 0.0))
        rows.append(
            {
                "label": label,
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
    pages = max(1, -(-len(rows) // CLASSES_PER_PAGE))
    page = min(max(page, 1), pages)
    shown = rows[(page - 1) * CLASSES_PER_PAGE : page * CLASSES_PER_PAGE]

    def ids_of(labels: Any) -> set[int]:
        return {int(label) for label in labels if str(label).isdigit()}

    fields = ("pk", "parent_id", "full_path_en")
    categories = {
        row[0]: row
        for row in Category.objects.filter(
            pk__in=ids_of(r["label"] for r in shown) | ids_of(label for pair in pairs for label in pair[:2])
        ).values_list(*fields)
    }
    parents = {pk: row[1] for pk, row in categories.items()}
    missing = {p for p in parents.values() if p} - set(categories)
    categories.update({row[0]: row for row in Category.objects.filter(pk__in=missing).values_list(*fields)})

    def name(label: Any) -> str:
        category = categories.get(int(label)) if str(label).isdigit() else None
        return category[2] if category else str(label)

    for line in shown:
        line["path"] = name(line["label"])
    by_parent: dict[tuple[str, str], int] = {}
    for true_label, predicted_label, n in pairs:
        t = parents.get(int(true_label)) if str(true_label).isdigit() else None
        p = parents.get(int(predicted_label)) if str(predicted_label).isdigit() else None
        key_pair = (name(t) if t else "—", name(p) if p else "—")
        by_parent[key_pair] = by_parent.get(key_pair, 0) + int(n)
    counts = version_training_counts(version_id=version.pk)
    return {
        "classes": shown,
        "classes_total": len(rows),
        "page": page,
        "pages": pages,
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


def version_training_counts(*, version_id: int) -> dict[str, int]:
    """Verified labels per category the version trained on, without the ids the snapshot also keeps (tens of
    thousands of them in a big catalog)."""
    from django.db.models.fields.json import KeyTransform

    row = (
        ModelVersion.objects.filter(pk=version_id)
        .annotate(counts=KeyTransform("counts", "data_snapshot"))
        .values_list("counts", flat=True)
        .first()
    )
    return row or {}


def _headlined(versions: QuerySet[ModelVersion]) -> list[ModelVersion]:
    """Versions without their stored metrics and data snapshot (a megabyte each at 5,000 classes): a list or a
    panel reads `headline`, written with the metrics."""
    return list(versions.defer("metrics", "data_snapshot"))


def versions_listed(*, limit: int = 20) -> list[ModelVersion]:
    """The Models page's versions, newest first, with their headline metrics."""
    return _headlined(ModelVersion.objects.select_related("created_by", "activated_by")[:limit])


def serving_and_active_headlined() -> tuple[ModelVersion | None, ModelVersion | None]:
    """The version whose predictions serve and the active one (re-scoring until it serves), headline metrics only."""
    from django.db.models import Q

    rows = _headlined(ModelVersion.objects.filter(Q(is_serving=True) | Q(status=ModelVersionStatus.ACTIVE)))
    serving = next((v for v in rows if v.is_serving), None)
    active = next((v for v in rows if v.status == ModelVersionStatus.ACTIVE), None)
    return serving, active


# Runs and jobs name their version: its label, never its stored metrics or data snapshot.
VERSION_HEAVY = ("model_version__metrics", "model_version__data_snapshot")
