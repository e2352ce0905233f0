from __future__ import annotations

import numpy as np
import pytest

from mlcore.engine.evaluation import coverage_at_precision, evaluate, expected_calibration_error
from mlcore.engine.hierarchy import Hierarchy, Rollup, margin_and_entropy
from mlcore.engine.text import product_text
from mlcore.engine.types import ProductText

# home > kitchen > {dish, fridge}; home > garden; el > phones
TREE = Hierarchy.from_pairs(
    [
        ("home", None),
        ("kitchen", "home"),
        ("dish", "kitchen"),
        ("fridge", "kitchen"),
        ("garden", "home"),
        ("el", None),
        ("phones", "el"),
    ]
)
CLASSES = ["dish", "fridge", "garden", "phones"]


def _node_probabilities(probabilities: np.ndarray, classes: list[str]) -> dict[str, float]:
    rollup = Rollup.build(TREE, classes)
    row = rollup.node_probabilities(np.array([probabilities], dtype=np.float32))[0]
    return {TREE.labels[node]: float(p) for node, p in zip(rollup.nodes, row, strict=True)}


def test_rollup_sums_descendants_into_ancestors():
    nodes = _node_probabilities([0.4, 0.35, 0.05, 0.2], CLASSES)
    assert nodes["kitchen"] == pytest.approx(0.75)
    assert nodes["home"] == pytest.approx(0.8)
    assert nodes["el"] == pytest.approx(0.2)
    assert nodes["dish"] == pytest.approx(0.4)


def test_rollup_keeps_only_the_nodes_that_receive_probability():
    rollup = Rollup.build(TREE, ["dish", "phones"])
    assert sorted(TREE.labels[n] for n in rollup.nodes) == ["dish", "el", "home", "kitchen", "phones"]
    assert rollup.matrix.nnz == 5  # one entry per class and level, never a dense class x node matrix


def test_backoff_picks_the_deepest_node_above_the_threshold():
    probabilities = np.array([[0.4, 0.35, 0.05, 0.2], [0.9, 0.05, 0.0, 0.05], [0.3, 0.2, 0.2, 0.3]], dtype=np.float32)
    rollup = Rollup.build(TREE, CLASSES)
    chosen, confidence = rollup.backoff(probabilities, threshold=0.7)
    assert [TREE.labels[c] for c in chosen] == ["kitchen", "dish", "home"]
    assert confidence.tolist() == pytest.approx([0.75, 0.9, 0.7])
    chosen, confidence = rollup.backoff(probabilities, threshold=0.99)
    assert chosen.tolist() == [-1, -1, -1]
    assert confidence.tolist() == [0.0, 0.0, 0.0]


def test_backoff_may_leave_the_best_class_s_branch():
    # phones is the likeliest class (0.4), yet home holds 0.6: the answer is not on the best class's path
    probabilities = np.array([[0.3, 0.2, 0.1, 0.4]], dtype=np.float32)
    chosen, confidence = Rollup.build(TREE, CLASSES).backoff(probabilities, threshold=0.55)
    assert [TREE.labels[c] for c in chosen] == ["home"]
    assert confidence.tolist() == pytest.approx([0.6])


def test_backoff_over_the_top_k_gives_what_the_full_rollup_gives():
    # A random tree of 300 nodes, 150 of them classes (some internal), rows from peaked to flat: the top-k path must
    # agree with the full roll-up everywhere, including rows whose answer is outside every top-k class's path.
    rng = np.random.default_rng(0)
    parents = [str(int(rng.integers(0, i))) if rng.random() < 0.95 else None for i in range(1, 300)]
    pairs = [("0", None)] + [(str(i), parent) for i, parent in zip(range(1, 300), parents, strict=True)]
    tree = Hierarchy.from_pairs(pairs)
    classes = [str(c) for c in sorted(rng.choice(300, size=150, replace=False))]
    rollup = Rollup.build(tree, classes)
    logits = rng.normal(size=(2000, len(classes))) * rng.choice([0.1, 1.0, 3.0, 8.0], size=(2000, 1))
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True)).astype(np.float32)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    for k in (1, 5):
        top = np.argsort(-probabilities, axis=1)[:, :k]
        for threshold in (0.3, 0.55, 0.9):
            fast, fast_confidence = rollup.backoff(probabilities, threshold=threshold, top=top)
            full, full_confidence = rollup.backoff(probabilities, threshold=threshold)
            assert (fast == full).all()
            assert fast_confidence == pytest.approx(full_confidence, abs=1e-5)


def test_internal_node_as_a_class_rolls_up_too():
    classes = ["kitchen", "dish"]  # a label on an internal node, as with Digital Cameras in the demo
    assert _node_probabilities([0.5, 0.5], classes)["kitchen"] == pytest.approx(1.0)


def test_margin_and_entropy():
    margin, entropy = margin_and_entropy(np.array([[0.5, 0.3, 0.2], [1.0, 0.0, 0.0]], dtype=np.float32))
    assert margin.tolist() == pytest.approx([0.2, 1.0])
    assert entropy[0] > entropy[1]
    assert entropy[1] == pytest.approx(0.0, abs=1e-6)


def test_evaluate_reports_every_metric():
    truth = [0, 0, 1, 2, 3, 3]
    probabilities = np.array(
        [[0.9, 0.1, 0, 0], [0.6, 0.4, 0, 0], [0.3, 0.7, 0, 0], [0.1, 0.1, 0.8, 0], [0, 0, 0.1, 0.9], [0.5, 0, 0, 0.5]],
        dtype=np.float32,
    )
    metrics = evaluate(truth, probabilities, CLASSES, TREE)
    assert metrics["accuracy"] == pytest.approx(5 / 6)
    assert set(metrics) >= {
        "macro_f1",
        "weighted_f1",
        "macro_precision",
        "weighted_recall",
        "per_class",
        "confused_pairs",
        "accuracy_interval",
        "ece",
        "coverage_at_95",
        "coverage_at_99",
        "precision_coverage",
        "reliability",
        "accuracy_per_level",
    }
    assert metrics["confused_pairs"] == [[CLASSES[3], CLASSES[0], 1]]
    # Nodes in common over the items: 3+3+3+2+2 for the five right ones, 0 for phones-as-dish (no shared ancestor);
    # predicted chains hold 16 nodes, true chains 15.
    assert metrics["hierarchical"]["precision"] == pytest.approx(13 / 16)
    assert metrics["hierarchical"]["recall"] == pytest.approx(13 / 15)
    # The one miss (phones predicted as dish) is wrong at the top level too.
    assert metrics["accuracy_per_level"]["1"] == pytest.approx(5 / 6)


def test_coverage_at_precision_and_calibration():
    confidence = np.array([0.99, 0.95, 0.9, 0.6, 0.5])
    correct = np.array([True, True, True, False, True])
    assert coverage_at_precision(confidence, correct, 0.95)["coverage"] == pytest.approx(0.6)
    assert coverage_at_precision(confidence, correct, 0.95)["threshold"] == pytest.approx(0.9)
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, False])) == pytest.approx(0.5)


def test_product_text_keeps_title_first_and_skips_a_brand_already_in_it():
    text = product_text(ProductText(title="Bosch SMS4 dishwasher", brand="Bosch", description="x " * 500))
    assert text.startswith("Bosch SMS4 dishwasher | x")
    assert "brand:" not in text
    assert len(text) < 400


def test_the_precision_coverage_curve_and_reliability_are_counts():
    from mlcore.engine.evaluation import precision_coverage_curve, reliability

    confidence = np.array([0.95, 0.9, 0.9, 0.7, 0.4])
    correct = np.array([True, True, False, True, False])
    curve = precision_coverage_curve(confidence, correct)
    # One point per distinct confidence, counting every item at or above it (the tie at 0.9 together).
    assert [(p["threshold"], p["n"], p["hits"]) for p in curve] == [
        (0.95, 1, 1),
        (0.9, 3, 2),
        (0.7, 4, 3),
        (0.4, 5, 3),
    ]
    assert len(precision_coverage_curve(np.linspace(0, 1, 5000), np.ones(5000, bool), max_points=50)) == 50
    bins = reliability(confidence, correct)
    assert sum(b["n"] for b in bins) == 5
    assert bins[-1]["n"] == 1  # (0.9, 1.0]: only 0.95
    assert bins[8]["hits"] == 1  # (0.8, 0.9]: the two at 0.9, one right


def test_macro_averages_count_only_the_classes_evaluated_and_accuracy_has_its_interval():
    # Every test item right, one class of four never seen in the test set nor predicted: macro-F1 is 1.0, not 0.75.
    truth = [0, 0, 1, 2]
    probabilities = np.eye(4, dtype=np.float32)[truth]
    metrics = evaluate(truth, probabilities, CLASSES)
    assert metrics["macro_f1"] == pytest.approx(1.0)
    assert metrics["classes_evaluated"] == 3
    assert set(metrics["per_class"]) == {CLASSES[0], CLASSES[1], CLASSES[2]}
    low, high = metrics["accuracy_interval"]
    assert high == pytest.approx(1.0)
    assert low == pytest.approx(0.5101, abs=1e-3)  # 4 of 4 right proves little
    assert metrics["macro_f1_interval"] == [pytest.approx(1.0), pytest.approx(1.0)]  # no resample holds a mistake


def test_the_macro_f1_interval_narrows_with_more_test_items_and_holds_the_estimate():
    from mlcore.engine.evaluation import macro_f1_interval

    rng = np.random.default_rng(3)
    widths = []
    for n in (40, 4000):
        truth = rng.integers(0, 8, n)
        # 80 % right, mistakes spread over the other classes
        predicted = np.where(rng.random(n) < 0.8, truth, (truth + rng.integers(1, 8, n)) % 8)
        metrics = evaluate(truth.tolist(), np.eye(8, dtype=np.float32)[predicted], [f"c{i}" for i in range(8)])
        low, high = macro_f1_interval(truth, predicted, n_classes=8)
        assert low <= metrics["macro_f1"] <= high
        widths.append(high - low)
    assert widths[0] > 5 * widths[1]  # sqrt(100) = 10 in theory; the bootstrap gets close


def test_temperature_scaling_lowers_the_calibration_error_of_an_overconfident_model():
    from mlcore.engine.calibration import fit_temperature, uncalibrated
    from mlcore.engine.evaluation import expected_calibration_error

    rng = np.random.default_rng(0)
    n, classes = 4000, 5
    # Labels drawn from softmax(z): z is calibrated. The model reports 4 z: the same ranking, far too sure.
    z = rng.normal(0, 1.5, (n, classes))
    calibrated = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    truth = np.array([rng.choice(classes, p=p) for p in calibrated])
    logits = 4.0 * z

    def probabilities(t: float) -> np.ndarray:
        z = logits / t
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    half = n // 2
    t = fit_temperature(logits[:half], truth[:half])
    assert t == pytest.approx(4.0, rel=0.2)  # it finds the factor the model was overconfident by
    before, after = probabilities(1.0)[half:], probabilities(t)[half:]
    right = before.argmax(axis=1) == truth[half:]
    ece_before = expected_calibration_error(before.max(axis=1), right)
    ece_after = expected_calibration_error(after.max(axis=1), right)
    assert ece_after < ece_before / 4
    assert ece_after < 0.03
    assert (after.argmax(axis=1) == before.argmax(axis=1)).all()  # no ranking changes
    assert np.allclose(uncalibrated(after, t), before, atol=1e-6)
    # Nothing to calibrate on: too few items, or not one mistake (the likelihood would only grow as T shrinks).
    assert fit_temperature(logits[:20], truth[:20]) == 1.0
    separable = np.eye(classes)[truth[:200]] * 3.0
    assert fit_temperature(separable, truth[:200]) == 1.0
