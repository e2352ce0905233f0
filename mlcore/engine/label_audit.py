"""Likely label errors among verified labels: confident learning (cleanlab) on out-of-sample probabilities.

Confident learning needs each label's probability from a model that never saw that label. The fine-tuned version
saw every training label, and memorised them, so its own scores would vouch for the very mistakes we look for.
Instead the features are the pretrained encoder's embeddings (label-independent), and a logistic regression is
fitted k times, each fold scored by the model trained on the other folds: every item gets an honest probability for
the label it was given. cleanlab then estimates, per pair of classes, how often one is given for the other and
flags the items that fall in those off-diagonal counts, worst first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class LabelIssue:
    index: int  # position in the audited list
    given: str  # the label of record
    suggested: str  # the class the held-out model prefers
    given_probability: float
    suggested_probability: float


@dataclass(frozen=True)
class AuditResult:
    issues: list[LabelIssue]  # worst first (lowest probability of the given label)
    checked: int  # items that took part (their class had enough examples)
    skipped: int  # items of classes too small to cross-validate
    classes: int
    # Share of checked items whose out-of-sample top class equals the given label: how far to trust the audit.
    agreement: float


def out_of_sample_probabilities(
    features: Matrix, labels: npt.NDArray[np.int64], *, folds: int = 5, seed: int = 0
) -> npt.NDArray[np.float64]:
    """Each row's class probabilities from a logistic regression fitted on the other folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    model = LogisticRegression(max_iter=1000)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return np.asarray(cross_val_predict(model, features, labels, cv=splitter, method="predict_proba"))


def find_label_issues(features: Matrix, labels: list[str], *, folds: int = 5, seed: int = 0) -> AuditResult:
    """Audit `labels` (one per row of `features`). Classes with fewer than `folds` examples cannot be held out in
    every fold, so they sit out (counted in `skipped`) rather than being judged on no evidence."""
    from cleanlab.filter import find_label_issues as cleanlab_find

    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows for {len(labels)} labels")
    counts = Counter(labels)
    kept = [i for i, label in enumerate(labels) if counts[label] >= folds]
    classes = sorted({labels[i] for i in kept})
    if len(classes) < 2:
        return AuditResult(issues=[], checked=0, skipped=len(labels), classes=len(classes), agreement=0.0)
    index = {label: k for k, label in enumerate(classes)}
    y = np.array([index[labels[i]] for i in kept], dtype=np.int64)
    probabilities = out_of_sample_probabilities(features[kept], y, folds=folds, seed=seed)
    flagged = cleanlab_find(y, probabilities, return_indices_ranked_by="self_confidence")
    issues = []
    for row in flagged:
        best = int(np.argmax(probabilities[row]))
        issues.append(
            LabelIssue(
                index=kept[row],
                given=classes[y[row]],
                suggested=classes[best],
                given_probability=float(probabilities[row, y[row]]),
                suggested_probability=float(probabilities[row, best]),
            )
        )
    agreement = float(np.mean(probabilities.argmax(axis=1) == y))
    return AuditResult(
        issues=issues,
        checked=len(kept),
        skipped=len(labels) - len(kept),
        classes=len(classes),
        agreement=agreement,
    )
