"""Honest metrics for a model version: the numbers a catalog manager decides on."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from mlcore.engine.hierarchy import Hierarchy


def expected_calibration_error(
    confidence: npt.NDArray[np.floating[Any]], correct: npt.NDArray[np.bool_], bins: int = 15
) -> float:
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = len(confidence)
    if total == 0:
        return 0.0
    error = 0.0
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += abs(float(correct[in_bin].mean()) - float(confidence[in_bin].mean())) * in_bin.sum() / total
    return float(error)


def coverage_at_precision(
    confidence: npt.NDArray[np.floating[Any]], correct: npt.NDArray[np.bool_], precision: float
) -> dict[str, float]:
    """The largest share of items the model can label alone (most confident first) while its precision on them
    stays at or above `precision`, and the confidence threshold that gives it."""
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(correct[order])
    counts = np.arange(1, len(order) + 1)
    ok = np.nonzero(hits / counts >= precision)[0]
    if len(ok) == 0:
        return {"coverage": 0.0, "threshold": 1.0}
    last = int(ok.max())
    return {"coverage": float((last + 1) / len(order)), "threshold": float(confidence[order][last])}


def precision_coverage_curve(
    confidence: npt.NDArray[np.floating[Any]], correct: npt.NDArray[np.bool_], max_points: int = 200
) -> list[dict[str, float]]:
    """The precision/coverage curve as counts: for thresholds from the most confident test item down, the items at
    or above it (n) and how many the model got right (hits), so a reader can put an interval on any point. Every
    distinct confidence is a point on a small test set; a large one keeps `max_points` evenly spaced by rank."""
    total = len(confidence)
    if total == 0:
        return []
    order = np.argsort(-confidence, kind="stable")
    ranked = confidence[order]
    hits = np.cumsum(correct[order])
    # The last rank of each distinct confidence: n counts every item at or above the threshold.
    last = np.nonzero(np.append(ranked[1:] != ranked[:-1], True))[0]
    if len(last) > max_points:
        last = last[np.unique(np.linspace(0, len(last) - 1, max_points).round().astype(int))]
    return [
        {"threshold": float(ranked[i]), "n": int(i + 1), "hits": int(hits[i]), "coverage": float((i + 1) / total)}
        for i in last
    ]


def reliability(
    confidence: npt.NDArray[np.floating[Any]], correct: npt.NDArray[np.bool_], bins: int = 10
) -> list[dict[str, float]]:
    """The reliability diagram's bins: test items by confidence, with their count, hits and mean confidence."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = []
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high) if low > 0 else (confidence >= low) & (confidence <= high)
        n = int(inside.sum())
        out.append(
            {
                "low": float(low),
                "high": float(high),
                "n": n,
                "hits": int(correct[inside].sum()),
                "confidence": float(confidence[inside].mean()) if n else float((low + high) / 2),
            }
        )
    return out


def evaluate(
    y_true: list[int],
    probabilities: npt.NDArray[np.floating[Any]],
    class_labels: list[str],
    hierarchy: Hierarchy | None = None,
) -> dict[str, Any]:
    """Accuracy (with its Wilson interval), macro and weighted P/R/F1 over the classes evaluated, the per-class
    report, the most confused pairs (sparse: never a dense n x n matrix at 10k classes), accuracy per taxonomy level,
    expected calibration error, coverage at 95 % and 99 % precision, the precision/coverage curve and the
    reliability bins (as counts)."""
    from sklearn.metrics import classification_report, precision_recall_fscore_support

    truth = np.asarray(y_true)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    correct = predicted == truth
    # Macro averages over the classes the test set holds or the model predicted: a class with no test item and no
    # prediction has no F1 to average (counting it as 0 made a version with every test item right read 0.80).
    present = sorted(set(truth.tolist()) | set(predicted.tolist()))
    hits = int(correct.sum())
    metrics: dict[str, Any] = {
        "n": len(truth),
        "accuracy": float(correct.mean()) if len(truth) else 0.0,
        "accuracy_interval": list(wilson_interval(hits, len(truth))),
        "classes_evaluated": len(present),
        "macro_f1_interval": list(macro_f1_interval(truth, predicted, n_classes=len(class_labels))),
    }
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            truth, predicted, labels=present or None, average=average, zero_division=0
        )
        metrics[f"{average}_precision"], metrics[f"{average}_recall"], metrics[f"{average}_f1"] = (
            float(p),
            float(r),
            float(f),
        )
    report = classification_report(
        truth,
        predicted,
        labels=present or None,
        target_names=[class_labels[i] for i in present] or None,
        output_dict=True,
        zero_division=0,
    )
    # Only the classes evaluated: at 10k classes a row per class of the taxonomy is a page nobody reads.
    metrics["per_class"] = {class_labels[i]: report[class_labels[i]] for i in present}
    metrics["confused_pairs"] = confused_pairs(truth, predicted, class_labels)
    metrics["labels"] = class_labels
    metrics["ece"] = expected_calibration_error(confidence, correct)
    metrics["coverage_at_95"] = coverage_at_precision(confidence, correct, 0.95)
    metrics["coverage_at_99"] = coverage_at_precision(confidence, correct, 0.99)
    metrics["precision_coverage"] = precision_coverage_curve(confidence, correct)
    metrics["reliability"] = reliability(confidence, correct)
    if hierarchy is not None:
        metrics["accuracy_per_level"] = accuracy_per_level(truth, predicted, class_labels, hierarchy)
        metrics["hierarchical"] = hierarchical_prf(truth, predicted, class_labels, hierarchy)
    return metrics


def wilson_interval(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion: honest at 23 test items, where "accuracy 1.0" means >= 0.86."""
    if n <= 0:
        return (0.0, 1.0)
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def macro_f1_interval(
    truth: npt.NDArray[np.int_],
    predicted: npt.NDArray[np.int_],
    *,
    n_classes: int,
    rounds: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of macro-F1: the test items resampled with replacement `rounds` times,
    each resample averaged over the classes it holds or predicts (as the point estimate is). Macro-F1 has no closed
    form like Wilson's; at 23 test items the interval is wide, which is the point. Per-class counts by bincount, so
    a round costs O(items + classes): about a second for 10k items over 5,000 classes."""
    n = len(truth)
    if n == 0:
        return (0.0, 1.0)
    rng = np.random.default_rng(seed)
    scores = np.empty(rounds)
    for r in range(rounds):
        sample = rng.integers(0, n, n)
        t, p = truth[sample], predicted[sample]
        hits = np.bincount(t[t == p], minlength=n_classes)
        # F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (support + predicted count)
        denominator = np.bincount(t, minlength=n_classes) + np.bincount(p, minlength=n_classes)
        held = denominator > 0
        scores[r] = float((2 * hits[held] / denominator[held]).mean())
    low, high = np.percentile(scores, [2.5, 97.5])
    return (float(low), float(high))


def confused_pairs(
    truth: npt.NDArray[np.int_], predicted: npt.NDArray[np.int_], class_labels: list[str], top: int = 50
) -> list[list[Any]]:
    """The `top` most frequent (true, predicted) mistakes as [true label, predicted label, count]."""
    wrong = truth != predicted
    if not wrong.any():
        return []
    pairs, counts = np.unique(np.stack([truth[wrong], predicted[wrong]], axis=1), axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:top]
    return [[class_labels[int(pairs[i][0])], class_labels[int(pairs[i][1])], int(counts[i])] for i in order]


def accuracy_per_level(
    truth: npt.NDArray[np.int_], predicted: npt.NDArray[np.int_], class_labels: list[str], hierarchy: Hierarchy
) -> dict[str, float]:
    """At level d, a prediction is right when its ancestor at depth d is the true label's (a near miss in a sibling
    leaf still gets the vertical right)."""
    index = hierarchy.index()
    paths = [list(reversed(hierarchy.ancestors(index[label]))) for label in class_labels]
    deepest = max((len(p) for p in paths), default=0)
    result: dict[str, float] = {}
    for level in range(1, deepest + 1):
        pairs = [(paths[t], paths[p]) for t, p in zip(truth, predicted, strict=True) if len(paths[t]) >= level]
        if pairs:
            right = sum(1 for t, p in pairs if len(p) >= level and p[level - 1] == t[level - 1])
            result[str(level)] = right / len(pairs)
    return result


def hierarchical_prf(
    truth: npt.NDArray[np.int_], predicted: npt.NDArray[np.int_], class_labels: list[str], hierarchy: Hierarchy
) -> dict[str, float]:
    """Hierarchical precision, recall and F1 (Kiritchenko et al.): each label stands for itself and its ancestors, so
    a sibling leaf (same parent) earns most of the credit that another vertical does not. Micro-averaged over items."""
    index = hierarchy.index()
    chains = [set(hierarchy.ancestors(index[label])) if label in index else set() for label in class_labels]
    common = predicted_size = true_size = 0
    for t, p in zip(truth, predicted, strict=True):
        true_set, predicted_set = chains[t], chains[p]
        common += len(true_set & predicted_set)
        predicted_size += len(predicted_set)
        true_size += len(true_set)
    precision = common / predicted_size if predicted_size else 0.0
    recall = common / true_size if true_size else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
