from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from accounts.roles import Role
from catalog.models import Category
from mlcore.models import Prediction
from tests.factories import CategoryFactory, ProductFactory, UserFactory

REPO = Path(__file__).resolve().parent.parent
DEMO_DATA = REPO / "demo_data"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path: Path) -> None:
    # Uploaded files go to a per-test folder, never into the developer's var/.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def annotator(db):
    return UserFactory(username="ann", role=Role.ANNOTATOR)


@pytest.fixture
def manager(db):
    return UserFactory(username="mgr", role=Role.CATALOG_MANAGER)


@pytest.fixture
def manager_client(manager) -> Client:
    client = Client()
    client.force_login(manager)
    return client


@pytest.fixture
def annotator_client(annotator) -> Client:
    client = Client()
    client.force_login(annotator)
    return client


@pytest.fixture
def small_tree(db) -> dict[str, Category]:
    """Home > Kitchen > {Dishwashers, Fridges}; Electronics > Phones."""
    home = CategoryFactory(external_id="hg", name_en="Home & Garden", name_zh_hans="家居与园艺")
    kitchen = CategoryFactory(external_id="hg-11", name_en="Kitchen", name_zh_hans="厨房", parent=home)
    dish = CategoryFactory(external_id="hg-11-1", name_en="Dishwashers", name_zh_hans="洗碗机", parent=kitchen)
    fridge = CategoryFactory(external_id="hg-11-2", name_en="Fridges", name_zh_hans="冰箱", parent=kitchen)
    el = CategoryFactory(external_id="el", name_en="Electronics", name_zh_hans="电子产品")
    phones = CategoryFactory(external_id="el-1", name_en="Phones", name_zh_hans="手机", parent=el)
    nodes = {"home": home, "kitchen": kitchen, "dish": dish, "fridge": fridge, "el": el, "phones": phones}
    for node in nodes.values():
        node.refresh_from_db()
    return nodes


@pytest.fixture
def write_file(tmp_path: Path):
    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return write


@pytest.fixture
def celery_worker(transactional_db) -> Iterator[None]:
    """A real Celery worker (in a thread) consuming from the real Redis broker, against the test database."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    app.control.purge()
    with start_worker(
        app,
        pool="solo",
        perform_ping_check=False,
        queues=["fast", "default", "training", "scoring"],
        loglevel="WARNING",
        shutdown_timeout=30,
    ):
        yield


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with the packaged tokenizer, saved as safetensors: trains in seconds."""
    from tests.mlcore.engine.toy import tiny_bert

    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


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
            margin=i / 100,
            entropy=0.5,
        )
        products.append(product)
    return products


@pytest.fixture
def annotators(db):
    return [UserFactory(username=f"annotator{i}", role=Role.ANNOTATOR) for i in range(4)]


@pytest.fixture
def ml_settings(settings, tiny_encoder: Path, tmp_path: Path):
    """The tiny encoder as the base model, artifacts in a per-test folder, small chunks, CPU."""
    settings.MLCORE_BASE_MODEL = str(tiny_encoder)
    settings.MLCORE_ARTIFACT_DIR = tmp_path / "models"
    settings.MLCORE_DEVICE = "cpu"
    settings.MLCORE_MAX_LENGTH = 16
    settings.MLCORE_RESCORE_CHUNK_SIZE = 4
    settings.MLCORE_FAST_RESCORE_CHUNK_SIZE = 6
    settings.MLCORE_MIN_TRAIN_STEPS = 0  # the tiny encoder learns the toy data in the epochs each test asks for
    from mlcore.services import scoring

    scoring._classifier.cache_clear()
    scoring._fast_head.cache_clear()
    scoring.base_encoder.cache_clear()
    scoring._ZEROSHOT_CACHE.clear()
    scoring._PRIOR_CACHE.clear()
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
