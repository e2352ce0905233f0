from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model

from accounts.roles import Role
from accounts.services import user_role_assign
from catalog.models import Category, Product
from catalog.services.taxonomy import tree_rebuild


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")

    @factory.post_generation
    def role(self, create: bool, extracted: Role | None, **kwargs: Any) -> None:
        if create and extracted:
            user_role_assign(user=self, role=extracted)


class CategoryFactory(factory.django.DjangoModelFactory):
    """Categories with their derived columns filled as the importer fills them."""

    class Meta:
        model = Category

    external_id = factory.Sequence(lambda n: f"cat-{n}")
    name_en = factory.Faker("word")
    name_zh_hans = ""
    parent = None
    depth = factory.LazyAttribute(lambda o: o.parent.depth + 1 if o.parent else 1)
    path = ""
    full_path_en = ""

    @classmethod
    def _create(cls, model_class: type[Category], *args: Any, **kwargs: Any) -> Category:
        category = super()._create(model_class, *args, **kwargs)
        tree_rebuild()
        category.refresh_from_db()
        if category.parent:
            category.parent.refresh_from_db()
        return category


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:06d}")
    title = factory.Faker("sentence", nb_words=6)
    brand = factory.Faker("company")
    category = None
    category_source = factory.LazyAttribute(lambda o: "import" if o.category else "")


def verified_product(category: Category, actor: Any, **fields: Any) -> Product:
    """A product whose category of record is `category`, verified by `actor` through the catalog's service (so it
    has its audit row, as a label from an annotator or a manager would)."""
    from catalog.models import CategorySource
    from catalog.services.labels import product_category_set

    product = ProductFactory(**fields)
    product_category_set(
        product_id=product.pk,
        category_id=category.pk,
        expected_version=product.version,
        source=CategorySource.ANNOTATION,
        actor=actor,
        verified=True,
    )
    product.refresh_from_db()
    return product
