"""What training and evaluation read: the verified labels split into train, validation and the frozen test set
(products as the texts the engine sees, read once per run), label counts, and the tree as the engine's Hierarchy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count

from catalog.models import Category, Product
from mlcore.models import (
    ModelVersion,
    TestSetItem,
)

if TYPE_CHECKING:
    from mlcore.engine.hierarchy import Hierarchy


def _share(product_id: int, salt: str) -> float:
    return int(hashlib.sha256(f"{salt}:{product_id}".encode()).hexdigest()[:8], 16) / 2**32


@dataclass
class Split:
    ids: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


def label_counts() -> dict[int, int]:

    rows = Product.objects.filter(is_verified=True, category__isnull=False).values("category_id")
    return {row["category_id"]: row["n"] for row in rows.annotate(n=Count("id"))}


def class_counts(labels: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return counts


def splits(version: ModelVersion) -> tuple[Split, Split, Split]:
    """All verified labels: the frozen test set (extended with a share of labels never seen before), then
    validation and training from the rest."""
    from mlcore.engine.text import product_text
    from mlcore.engine.types import ProductText

    verified = list(
        Product.objects.filter(is_verified=True, category__isnull=False)
        .values_list("id", "title", "brand", "description", "category_id")
        .order_by("id")
    )
    test_ids = set(TestSetItem.objects.values_list("product_id", flat=True))
    new_test = [pk for pk, *_ in verified if pk not in test_ids and _share(pk, "test") < settings.MLCORE_TEST_SHARE]
    TestSetItem.objects.bulk_create(
        [TestSetItem(product_id=pk, added_for=version) for pk in new_test], ignore_conflicts=True
    )
    test_ids.update(new_test)
    train, validation, test = Split(), Split(), Split()
    for pk, title, brand, description, category_id in verified:
        text = product_text(ProductText(title=title, brand=brand, description=description))
        if pk in test_ids:
            split = test
        elif _share(pk, f"validation-{version.number}") < settings.MLCORE_VALIDATION_SHARE:
            split = validation
        else:
            split = train
        split.ids.append(pk)
        split.texts.append(text)
        split.labels.append(str(category_id))
    return train, validation, test


_TREE: dict[str, Any] = {}


def category_hierarchy() -> tuple[Hierarchy, list[int]]:
    """The whole tree for the engine, labels as category ids (strings), and the pks by node index. Kept per process
    until a category is added or changes (one aggregate query says so): every re-scoring chunk rolls its predictions
    up the tree, and reading 10k categories for each of a million products' 500 chunks was most of a fast re-score."""
    from django.db.models import Max, Sum

    from mlcore.engine.hierarchy import Hierarchy  # the engine (numpy) loads where the tree is needed

    # Bulk writes (a taxonomy import) may move parents without touching updated_at: the parents' sum moves with them.
    state = Category.objects.aggregate(
        n=Count("pk"), changed=Max("updated_at"), last=Max("pk"), parents=Sum("parent_id")
    )
    key = (state["n"], state["changed"], state["last"], state["parents"])
    cached = _TREE.get("tree")
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    rows = list(Category.objects.values_list("pk", "parent_id").order_by("pk"))
    hierarchy = Hierarchy.from_pairs([(str(pk), str(parent) if parent else None) for pk, parent in rows])
    pks = [pk for pk, _ in rows]
    _TREE["tree"] = (key, hierarchy, pks)
    return hierarchy, pks
