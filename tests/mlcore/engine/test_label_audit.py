from __future__ import annotations

import numpy as np
import pytest

from mlcore.engine.label_audit import find_label_issues


def _clusters(flip: list[int]) -> tuple[np.ndarray, list[str]]:
    """Three well separated clusters of 40 points each; the rows in `flip` get the next cluster's label."""
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8, dtype=np.float32) * 6
    features = np.concatenate([centres[k] + rng.normal(0, 0.5, (40, 8)).astype(np.float32) for k in range(3)])
    labels = [str(i // 40) for i in range(120)]
    for i in flip:
        labels[i] = str((int(labels[i]) + 1) % 3)
    return features, labels


def test_finds_the_flipped_labels_and_names_the_right_class():
    flipped = [3, 47, 95, 110]
    features, labels = _clusters(flipped)

    result = find_label_issues(features, labels)

    assert {issue.index for issue in result.issues} == set(flipped)
    for issue in result.issues:
        assert issue.given == labels[issue.index]
        assert issue.suggested == str(issue.index // 40)  # the cluster it really belongs to
        assert issue.given_probability < 0.2 < issue.suggested_probability
    assert result.checked == 120
    assert result.skipped == 0
    assert result.classes == 3
    assert result.agreement == pytest.approx(116 / 120)


def test_clean_labels_raise_nothing():
    features, labels = _clusters([])
    assert find_label_issues(features, labels).issues == []


def test_classes_too_small_to_cross_validate_sit_out():
    features, labels = _clusters([])
    labels[0:3] = ["rare", "rare", "rare"]  # 3 examples, fewer than the 5 folds

    result = find_label_issues(features, labels)

    assert result.skipped == 3
    assert all(issue.index >= 3 for issue in result.issues)


def test_one_class_is_nothing_to_compare():
    features = np.zeros((10, 4), dtype=np.float32)
    result = find_label_issues(features, ["a"] * 10)
    assert result.issues == []
    assert result.checked == 0


def test_rows_and_labels_must_match():
    with pytest.raises(ValueError, match="3 feature rows for 2 labels"):
        find_label_issues(np.zeros((3, 2), dtype=np.float32), ["a", "b"])
