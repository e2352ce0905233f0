from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from catalog.models import Category, Product
from mlcore.models import ModelVersion, Prediction
from tests.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db


def _prediction(product: Product, version: ModelVersion | None, category: Category) -> Prediction:
    return Prediction.objects.create(
        product=product,
        model_version=version,
        top=[[category.pk, 0.9]],
        category=category,
        confidence=0.9,
        margin=0.8,
        entropy=0.1,
    )


def test_one_prediction_per_product_and_version_and_one_zero_shot():
    category = CategoryFactory()
    product = ProductFactory()
    version = ModelVersion.objects.create(number=1, base_model="tiny")
    _prediction(product, version, category)
    _prediction(product, None, category)
    for again in (version, None):  # the zero-shot one is a partial unique index: a migration once lost it
        with pytest.raises(IntegrityError), transaction.atomic():
            _prediction(product, again, category)


def test_no_index_that_another_one_already_leads_with():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Prediction._meta.db_table)
    plain = sorted(
        c["columns"][0] for c in constraints.values() if c["index"] and not c["unique"] and len(c["columns"]) == 1
    )
    # product and model_version are the first columns of the unique (product, version) and (version, margin)
    # indexes; the category columns keep theirs for the cascade when a category is deleted.
    assert plain == ["backoff_category_id", "category_id"]
