from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def ml_settings(settings, tiny_encoder: Path, tmp_path: Path):
    """The tiny encoder as the base model, artifacts in a per-test folder, small chunks, CPU."""
    settings.MLCORE_BASE_MODEL = str(tiny_encoder)
    settings.MLCORE_ARTIFACT_DIR = tmp_path / "models"
    settings.MLCORE_DEVICE = "cpu"
    settings.MLCORE_MAX_LENGTH = 16
    settings.MLCORE_RESCORE_CHUNK_SIZE = 4
    settings.MLCORE_MIN_TRAIN_STEPS = 0  # the tiny encoder learns the toy data in the epochs each test asks for
    from mlcore.services import rescoring

    rescoring._classifier.cache_clear()
    rescoring._ZEROSHOT_CACHE.clear()
    return settings


KITCHEN = ["dishwasher", "fridge", "oven", "microwave", "freezer"]
PHONES = ["iphone", "galaxy phone", "pixel phone", "nokia phone", "smartphone"]


@pytest.fixture
def labelled_catalog(small_tree, manager):
    """Ten verified products in each of two leaves, and a few unlabelled ones."""
    from tests.factories import ProductFactory, verified_product

    for i in range(20):
        words, category = (KITCHEN, small_tree["dish"]) if i % 2 else (PHONES, small_tree["phones"])
        verified_product(category, manager, sku=f"L{i:03d}", title=f"{words[i % 5]} model {i}", brand="")
    for i in range(5):
        ProductFactory(sku=f"U{i:03d}", title=f"{(KITCHEN + PHONES)[i * 2]} new {i}", brand="")
    return small_tree
