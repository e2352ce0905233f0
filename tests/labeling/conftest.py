from __future__ import annotations

import pytest

from accounts.roles import Role
from mlcore.models import Prediction
from tests.factories import ProductFactory, UserFactory


@pytest.fixture
def queue_catalog(small_tree):
    """30 unverified products with zero-shot scores (margins 0.00 .. 0.29: item 0 is the most uncertain)."""
    products = []
    for i in range(30):
        product = ProductFactory(sku=f"Q{i:03d}", title=f"item {i}")
        top = [[small_tree["dish"].pk, 0.5 + i / 100], [small_tree["fridge"].pk, 0.5 - i / 100]]
        Prediction.objects.create(
            product=product,
            model_version=None,
            top=top,
            category=small_tree["dish"],
            confidence=top[0][1],
            margin=i / 100 * 2 / 2 * 1.0 if i else 0.0,
            entropy=0.5,
        )
        products.append(product)
    return products


@pytest.fixture
def annotators(db):
    return [UserFactory(username=f"annotator{i}", role=Role.ANNOTATOR) for i in range(4)]
