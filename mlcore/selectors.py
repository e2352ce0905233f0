from __future__ import annotations

from typing import Any

from catalog.models import Category, Product
from mlcore.models import ModelVersion, Prediction


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
