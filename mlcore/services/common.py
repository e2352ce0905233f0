from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from catalog.models import Category

if TYPE_CHECKING:
    from mlcore.engine.hierarchy import Hierarchy


def base_model_path() -> str:
    if settings.MLCORE_BASE_MODEL:
        return str(settings.MLCORE_BASE_MODEL)
    from mlcore.engine.artifacts import default_base_model

    return default_base_model()


def category_hierarchy() -> tuple[Hierarchy, list[int]]:
    """The whole tree for the engine, labels as category ids (strings), and the pks by node index."""
    from mlcore.engine.hierarchy import Hierarchy

    rows = list(Category.objects.values_list("pk", "parent_id").order_by("pk"))
    hierarchy = Hierarchy.from_pairs([(str(pk), str(parent) if parent else None) for pk, parent in rows])
    return hierarchy, [pk for pk, _ in rows]
