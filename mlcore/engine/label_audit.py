"""Likely label errors among verified labels: confident learning (cleanlab) on out-of-sample probabilities.

Confident learning needs each label's probability from a model that never saw that label. The fine-tuned version
saw every training label, and memorised them, so its own scores would vouch for the very mistakes we look for.
Instead a logistic regression over TF-IDF word and character n-grams of the product text is fitted k times, each
fold scored by the model trained on the other folds: every item gets an honest probability for the label it was
given. cleanlab then estimates, per pair of classes, how often one is given for the other and flags the items in
those off-diagonal counts, worst first.

Why n-grams and not the encoder's embeddings: on 10,000 shipped offers with 5 % of labels flipped
(bench/label_audit.py) MiniLM embeddings found them with precision 0.79 / recall 0.86, n-grams with 0.90 / 0.90,
both together no better than n-grams alone; and n-grams need no model, so the check takes seconds, not minutes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

MAX_FEATURES = 32_768  # per vectorizer (words, characters)


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
    features: Any, labels: npt.NDArray[np.int64], *, folds: int = 5, seed: int = 0
) -> npt.NDArray[np.float64]:
    """Each row's class probabilities from a logistic regression fitted on the other folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    model = LogisticRegression(max_iter=1000)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return np.asarray(cross_val_predict(model, features, labels, cv=splitter, method="predict_proba"))


def text_features(texts: list[str]) -> Any:
    """Sparse TF-IDF of word 1-2-grams and character 2-5-grams (model numbers, brands, other languages)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    # Capped: the regression holds a weight per feature and class, so 65k features x 1,000 categories is ~0.5 GB.
    words = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, max_features=MAX_FEATURES)
    characters = TfidfVectorizer(
        sublinear_tf=True, analyzer="char_wb", ngram_range=(2, 5), min_df=2, max_features=MAX_FEATURES
    )
    return make_union(words, characters).fit_transform(texts).tocsr()


def audit_texts(texts: list[str], labels: list[str], *, folds: int = 5, seed: int = 0) -> AuditResult:
    """The audit as the label check runs it: n-gram features, then find_label_issues."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts for {len(labels)} labels")
    if len(set(labels)) < 2 or len(texts) < 2 * folds:
        return AuditResult(issues=[], checked=0, skipped=len(labels), classes=len(set(labels)), agreement=0.0)
    return find_label_issues(text_features(texts), labels, folds=folds, seed=seed)


def find_label_issues(features: Any, labels: list[str], *, folds: int = 5, seed: int = 0) -> AuditResult:
    """Audit `labels` (one per row of `features`, dense or sparse). Classes with fewer than `folds` examples cannot
    be held out in every fold, so they sit out (counted in `skipped`) rather than being judged on no evidence."""
    from cleanlab.filter import find_label_issues as cleanlab_find

    if features.shape[0] != len(labels):
        raise ValueError(f"{features.shape[0]} feature rows for {len(labels)} labels")
    counts = Counter(labels)
    kept = [i for i, label in enumerate(labels) if counts[label] >= folds]
    classes = sorted({labels[i] for i in kept})
    if len(classes) < 2:
        return AuditResult(issues=[], checked=0, skipped=len(labels), classes=len(classes), agreement=0.0)
    index = {label: k for k, label in enumerate(classes)}
    y = np.array([index[labels[i]] for i in kept], dtype=np.int64)
    probabilities = out_of_sample_probabilities(features[kept], y, folds=folds, seed=seed)
    # n_jobs=1: cleanlab otherwise forks a multiprocessing pool, and a fork of a Celery worker (broker connections
    # mid-poll, the job's heartbeat thread) can hang in the child's after-fork cleanup; it did in the test suite.
    # The pruning is a small part of an audit: the cross-validated regression above is the bulk of it.
    flagged = cleanlab_find(y, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
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
