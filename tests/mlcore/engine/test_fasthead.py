from __future__ import annotations

import numpy as np
import pytest

from mlcore.engine.fasthead import FastHead, fit, is_fast_head


def _blobs(rng: np.random.Generator, n: int, spread: float) -> tuple[np.ndarray, list[str]]:
    centres = np.eye(3, 8, dtype=np.float32)
    labels = [str(i % 3) for i in range(n)]
    x = centres[[int(label) for label in labels]] + rng.normal(0, spread, (n, 8)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def test_centroids_classify_and_survive_a_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x, labels = _blobs(rng, 90, 0.3)
    head = fit(x[:60], labels[:60])
    assert head.labels == ["0", "1", "2"]
    assert head.counts.tolist() == [20, 20, 20]
    predictions = head.predict(x[60:], top_k=2, keep_probabilities=True)
    assert (predictions.top_indices[:, 0] == np.array([int(label) for label in labels[60:]])).mean() > 0.9
    assert predictions.probabilities is not None
    assert np.allclose(predictions.probabilities.sum(axis=1), 1.0)
    head.save(tmp_path / "v3")
    assert is_fast_head(tmp_path / "v3")
    loaded = FastHead.load(tmp_path / "v3")
    assert np.allclose(loaded.predict(x[60:], top_k=2).top_probabilities, predictions.top_probabilities)
    assert loaded.temperature == pytest.approx(head.temperature)


def test_the_leave_one_out_temperature_makes_a_noisy_head_less_sure():
    rng = np.random.default_rng(1)
    clean = fit(*_blobs(rng, 150, 0.05))
    noisy = fit(*_blobs(rng, 150, 0.9))
    assert noisy.temperature > clean.temperature  # overlapping classes: a softer softmax


def test_the_zero_shot_prior_decides_where_the_centroids_cannot():
    # Two classes whose labels look alike; the prior (zero-shot) knows which is which.
    x = np.array([[1, 0], [1, 0.01], [1, 0.02], [1, -0.01]], dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = ["a", "a", "b", "b"]
    prior = np.array([[1.0, 0.0]] * 4, dtype=np.float32)
    without = fit(x, labels)
    with_prior = fit(x, labels, prior=prior, prior_weight=0.5)
    product = x[3:4]
    assert with_prior.predict(product, prior[:1]).top_indices[0, 0] == 0
    assert without.prior_weight == 0.0


def test_the_catalog_scorer_gives_what_the_head_and_the_rollup_give():
    """CatalogScorer folds the prior and the temperature into one matrix and reads the back-off off running sums in
    tree order: the same answers as FastHead.predict + Rollup.backoff, peaked rows and flat ones alike."""
    from mlcore.engine.fasthead import CatalogScorer
    from mlcore.engine.hierarchy import Hierarchy, Rollup

    rng = np.random.default_rng(3)
    # 40 leaves under 8 parents under 2 roots; classes are the leaves, labelled out of tree order.
    pairs = [("r0", None), ("r1", None)] + [(f"p{i}", f"r{i % 2}") for i in range(8)]
    pairs += [(f"l{i}", f"p{i % 8}") for i in range(40)]
    tree = Hierarchy.from_pairs(pairs)
    labels = sorted(f"l{i}" for i in range(40))
    centroids = rng.normal(size=(40, 16)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    head = FastHead(labels=labels, centroids=centroids, counts=np.full(40, 5), prior_weight=0.5, temperature=4.0)
    prior_matrix = rng.normal(scale=0.1, size=(40, 16)).astype(np.float32)
    x = np.vstack(
        [centroids[rng.integers(0, 40, 300)] + rng.normal(scale=0.3, size=(300, 16)), rng.normal(size=(100, 16))]
    )
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    rollup = Rollup.build(tree, labels)
    outcomes = set()
    for threshold in (0.5, 0.9):
        predictions, chosen, confidence = CatalogScorer.build(head, rollup, prior_matrix).predict(
            x, top_k=3, threshold=threshold
        )
        reference = head.predict(x, x @ prior_matrix.T, top_k=3, keep_probabilities=True)
        assert (predictions.top_indices[:, 0] == reference.top_indices[:, 0]).all()
        assert np.allclose(predictions.top_probabilities, reference.top_probabilities, atol=1e-5)
        expected, expected_confidence = rollup.backoff(reference.probabilities, threshold=threshold)
        assert (chosen == expected).all()
        assert np.allclose(confidence, expected_confidence, atol=1e-5)
        outcomes.update({"node" if c >= 0 else "none" for c in chosen.tolist()})
    assert outcomes == {"node", "none"}  # both exercised
