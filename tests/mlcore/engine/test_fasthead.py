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
