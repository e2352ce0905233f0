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
    # indexes; no query looks a prediction up by its category.
    assert plain == []
    checked = sorted(c["columns"][0] for c in constraints.values() if c["foreign_key"])
    # The product's keeps its constraint: a chunk must not write rows for a product deleted while it scored. The
    # version and the category columns have none (see the model).
    assert checked == ["product_id"]


def test_a_deleted_version_takes_its_predictions_and_rows_written_after_are_pruned():
    """No constraint ties a prediction to its version: Django's cascade deletes a deleted version's predictions,
    and a row that names a version gone (a chunk that wrote after the cascade's query) is pruned at the next switch."""
    from mlcore.services.registry import predictions_prune

    product = ProductFactory()
    category = CategoryFactory()
    row = {"top": [[category.pk, 0.9]], "category": category, "confidence": 0.9, "margin": 0.8, "entropy": 0.1}
    version = ModelVersion.objects.create(number=1, base_model="tiny")
    Prediction.objects.create(product=product, model_version=version, **row)
    version.delete()
    assert not Prediction.objects.exists()

    serving = ModelVersion.objects.create(number=2, base_model="tiny", is_serving=True)
    Prediction.objects.create(product=product, model_version=serving, **row)
    Prediction.objects.create(product=product, model_version_id=serving.pk + 1000, **row)
    Prediction.objects.create(product=product, model_version=None, **row)  # zero-shot's: not a version's
    assert predictions_prune(keep=2) == 1
    assert set(Prediction.objects.values_list("model_version_id", flat=True)) == {None, serving.pk}


def test_a_deleted_category_is_skipped_where_predictions_named_it():
    """No constraint ties a prediction to its categories (as none ever tied the ids in `top`): a category deleted
    in the Django admin leaves predictions that name it, and every reader skips it."""
    from mlcore.selectors import product_confident_category, product_suggestions

    gone, kept = CategoryFactory(), CategoryFactory()
    product = ProductFactory()
    version = ModelVersion.objects.create(number=1, base_model="tiny", is_serving=True)
    Prediction.objects.create(
        product=product,
        model_version=version,
        top=[[gone.pk, 0.6], [kept.pk, 0.3]],
        category=gone,
        confidence=0.6,
        margin=0.3,
        entropy=0.9,
        backoff_category=gone,
        backoff_confidence=0.95,
    )
    assert product_confident_category(product=product) is not None
    gone.delete()
    assert [s["category_id"] for s in product_suggestions(product=product)] == [kept.pk]
    assert product_confident_category(product=product) is None
    assert Prediction.objects.filter(product=product).exists()
