from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlcore.engine.hierarchy import Hierarchy
from mlcore.engine.zeroshot import CategoryTexts, Encoder, ZeroShotScorer, head_noun


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("Mobile & Smart Phones", "Phones"),
        ("Freezer Shelves", "Shelves"),
        ("SIM Cards", "Cards"),
        ("Tops, Tees & Blouses", "Blouses"),
        ("Washer-Dryer Combos", "Combos"),
        ("Cameras (Film)", "Cameras"),
        ("Refrigerators", "Refrigerators"),
        ("洗碗机", "洗碗机"),
    ],
)
def test_head_noun_is_what_the_category_is(name: str, head: str):
    assert head_noun(name) == head


class _WordEncoder:
    """One dimension per word, summed and normalised: enough to show how the score combines its terms."""

    VOCABULARY = ["kitchen", "freezer", "shelves", "freezers", "bosch", "fridge"]

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = np.zeros((len(texts), len(self.VOCABULARY)), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace(">", " ").split():
                if word in self.VOCABULARY:
                    rows[i, self.VOCABULARY.index(word)] += 1
        return rows / np.linalg.norm(rows, axis=1, keepdims=True).clip(min=1e-9)


def _mini_taxonomy() -> tuple[CategoryTexts, dict[str, int]]:
    """Appliances and phones beside their own accessories, as in the Shopify taxonomy."""
    pairs = [
        ("hg", None, "Home & Garden"),
        ("k", "hg", "Kitchen & Dining"),
        ("ka", "k", "Kitchen Appliances"),
        ("r", "ka", "Refrigerators"),
        ("acc", "k", "Kitchen Appliance Accessories"),
        ("fa", "acc", "Freezer Accessories"),
        ("sh", "fa", "Freezer Shelves"),
        ("dh", "fa", "Freezer Door Handles"),
        ("el", None, "Electronics"),
        ("tel", "el", "Telephony"),
        ("ph", "tel", "Mobile & Smart Phones"),
        ("pa", "tel", "Mobile & Smart Phone Accessories"),
        ("sim", "pa", "SIM Cards"),
    ]
    hierarchy = Hierarchy.from_pairs([(node, parent) for node, parent, _ in pairs])
    names = [name for *_, name in pairs]
    paths = [" > ".join(names[a] for a in reversed(hierarchy.ancestors(i))) for i in range(len(pairs))]
    return CategoryTexts(hierarchy, names, paths), hierarchy.index()


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    from mlcore.engine.artifacts import default_base_model

    return Encoder(default_base_model(), device="cpu")


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("bosch kgn36vl35g fridge freezer", "r"),
        ("samsung rb29fsrndsa fridge freezer a+ silver", "r"),
        ("apple iphone 8 plus 64gb silver", "ph"),
    ],
)
def test_the_head_noun_keeps_a_product_out_of_its_accessories(
    monkeypatch: pytest.MonkeyPatch, minilm: Encoder, title: str, expected: str
):
    """With the packaged MiniLM: on path and node similarity alone these land on Freezer Door Handles, Freezer
    Shelves and SIM Cards (every word of the title matches the modifier); the head noun brings them home."""
    from mlcore.engine import zeroshot

    texts, index = _mini_taxonomy()
    encoder = minilm
    leaves = [index[node] for node in ("r", "sh", "dh", "ph", "sim")]
    product = encoder.embed([title])

    def best(weight: float) -> str:
        monkeypatch.setattr(zeroshot, "HEAD_WEIGHT", weight)
        scores = ZeroShotScorer(encoder, texts).score(product, leaves)[0]
        return texts.hierarchy.labels[leaves[int(scores.argmax())]]

    default = zeroshot.HEAD_WEIGHT
    assert best(0.0) != expected
    assert best(default) == expected


class _WordEncoder:
    def embed(self, texts: list[str]) -> np.ndarray:
        return np.array([[len(t), t.count("e") + 1] for t in texts], dtype=np.float32)


def test_category_embeddings_are_cached_with_their_heads(tmp_path: Path):
    texts, _ = _mini_taxonomy()
    first = ZeroShotScorer(_WordEncoder(), texts, cache_dir=tmp_path, model_name="words")  # type: ignore[arg-type]
    again = ZeroShotScorer(None, texts, cache_dir=tmp_path, model_name="words")  # type: ignore[arg-type]
    assert np.allclose(again.head_embeddings, first.head_embeddings)
    assert np.allclose(again.path_embeddings, first.path_embeddings)
