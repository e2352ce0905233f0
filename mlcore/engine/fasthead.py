"""A fast head: class centroids of the verified products' stored embeddings, fused with the zero-shot prior.

Fitted in a second on a CPU from embeddings already stored (no encoder pass), so that an annotator's labels change
the suggestions within a minute instead of waiting for the next fine-tune. A product is scored by its cosine to each
class's centroid plus `prior_weight` times the zero-shot score of that class; the softmax's temperature is fitted by
leave-one-out on the labels themselves (each label scored against its class's centroid without it), as a fine-tuned
version's is on its validation split.

Measured with 5 labels per category on frozen all-MiniLM-L6-v2 embeddings (bench.accuracy; Flipkart's 173
categories with >= 10 distinct titles, 9,666 held-out titles): centroids 0.860, with the zero-shot prior at weight 0.5
(chosen on PriceRunner, where it gives 0.827) 0.874. Centroids are kept for what they cost: a sum per class,
refitted in milliseconds, explained by the nearest labelled products.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mlcore.engine.calibration import COSINE_TEMPERATURE, fit_temperature
from mlcore.engine.hierarchy import Rollup, margin_and_entropy
from mlcore.engine.prediction import Predictions

Matrix = npt.NDArray[np.float32]
SCALE = COSINE_TEMPERATURE
HEAD_FILE = "fasthead.npz"


@dataclass
class FastHead:
    labels: list[str]  # class labels (category ids), by row of `centroids`
    centroids: Matrix  # (classes, dim), L2-normalised
    counts: npt.NDArray[np.int64]  # labels per class
    prior_weight: float = 0.0
    temperature: float = 1.0

    def scores(self, embeddings: Matrix, prior: Matrix | None = None) -> Matrix:
        """(n, classes) cosine to each centroid, plus the weighted zero-shot prior (same columns) when given."""
        scores = np.asarray(embeddings, dtype=np.float32) @ self.centroids.T
        if prior is not None and self.prior_weight:
            scores = scores + np.float32(self.prior_weight) * prior
        return np.asarray(scores, dtype=np.float32)

    def predict(
        self, embeddings: Matrix, prior: Matrix | None = None, *, top_k: int = 5, keep_probabilities: bool = False
    ) -> Predictions:
        logits = self.scores(embeddings, prior) / np.float32(SCALE * self.temperature)
        shifted = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        k = min(top_k, len(self.labels))
        # The k best of thousands of classes: partition, then order only those (a full sort was a third of a chunk).
        top = np.argpartition(-probabilities, k - 1, axis=1)[:, :k] if k < len(self.labels) else None
        if top is None:
            top = np.argsort(-probabilities, axis=1, kind="stable")
        else:
            order = np.argsort(-np.take_along_axis(probabilities, top, axis=1), axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
        top_probabilities = np.take_along_axis(probabilities, top, axis=1).astype(np.float32)
        margin, entropy = margin_and_entropy(top_probabilities)
        return Predictions(
            top_indices=top.astype(np.int64),
            top_probabilities=top_probabilities,
            margin=np.asarray(margin, dtype=np.float32),
            entropy=np.asarray(entropy, dtype=np.float32),
            probabilities=probabilities.astype(np.float32) if keep_probabilities else None,
        )

    def save(self, folder: str | Path, metrics: dict[str, Any] | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / HEAD_FILE, centroids=self.centroids, counts=self.counts)
        (folder / "fasthead.json").write_text(
            json.dumps({"labels": self.labels, "prior_weight": self.prior_weight, "temperature": self.temperature})
        )
        (folder / "metrics.json").write_text(json.dumps({**(metrics or {}), "temperature": self.temperature}))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> FastHead:
        folder = Path(folder)
        stored = np.load(folder / HEAD_FILE, allow_pickle=False)  # arrays only: never a pickle
        meta = json.loads((folder / "fasthead.json").read_text())
        return cls(
            labels=list(meta["labels"]),
            centroids=stored["centroids"].astype(np.float32),
            counts=stored["counts"].astype(np.int64),
            prior_weight=float(meta["prior_weight"]),
            temperature=float(meta["temperature"]),
        )


@dataclass(frozen=True)
class CatalogScorer:
    """A fast head made ready to re-score a whole catalog: the zero-shot prior folded into the weights (it is linear
    in the embedding, so centroids + w x prior is one matrix), the temperature too, and the classes in the tree's
    order so that the back-off reads each node's probability off running sums (Rollup.backoff_ordered). Gives what
    FastHead.predict and Rollup.backoff give, with one matrix product and a few passes over the scores instead of a
    dozen (bench.rescore --fast)."""

    weights: Matrix  # (classes, dim), rows in rollup.order
    rollup: Rollup
    _local: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    @classmethod
    def build(cls, head: FastHead, rollup: Rollup, prior_matrix: Matrix | None = None) -> CatalogScorer:
        """prior_matrix: (classes, dim), the zero-shot score of each class as a vector (ZeroShotScorer.linear)."""
        weights = head.centroids.astype(np.float32).copy()
        if prior_matrix is not None and head.prior_weight:
            weights += np.float32(head.prior_weight) * prior_matrix
        weights /= np.float32(SCALE * head.temperature)
        return cls(weights=np.ascontiguousarray(weights[rollup.order]), rollup=rollup)

    def _buffers(self, n: int) -> tuple[Matrix, npt.NDArray[np.float64]]:
        """The scores and running sums of an n-row chunk, allocated once per thread and reused: a fresh 80 MB array
        per 10,000-product chunk is 20,000 fresh pages for the kernel to fault in and zero, which took the running
        sums 3x the time of the sums themselves in a re-scoring job (bench.rescore --fast: 105 -> 81-88 s per 1M). The
        price: they stay with the scorer between chunks (n x classes x 12 bytes: 120 MB at 10,000 x 1,000) until the
        worker drops its caches (scoring_caches_clear, before a training run) or a new version replaces the scorer."""
        kept = getattr(self._local, "buffers", None)
        if kept is None or len(kept[0]) < n:
            kept = (
                np.empty((n, len(self.weights)), dtype=np.float32),
                np.empty((n, len(self.weights) + 1), dtype=np.float64),
            )
            self._local.buffers = kept
        return kept[0][:n], kept[1][:n]

    def predict(
        self, embeddings: Matrix, *, top_k: int, threshold: float
    ) -> tuple[Predictions, npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Top-k (class indices as the head's), and each row's back-off node and its probability. Nothing returned
        points into the reused buffers."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        n, classes = len(embeddings), len(self.weights)
        scores, running = self._buffers(n)
        np.matmul(embeddings, self.weights.T, out=scores)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)  # the softmax's numerators; each row's total is its running sum's last column
        # float64: a node's probability is a difference of two sums of up to `classes` terms.
        running[:, 0] = 0.0
        np.cumsum(scores, axis=1, out=running[:, 1:])
        # The k best, best first, by k passes of argmax (half of argpartition's time here); the numerators are
        # >= 0, so a taken one is set to -1 and no longer needed after.
        k = min(top_k, classes)
        rows = np.arange(n)
        top = np.empty((n, k), dtype=np.int64)
        values = np.empty((n, k), dtype=np.float32)
        for j in range(k):
            top[:, j] = scores.argmax(axis=1)
            values[:, j] = scores[rows, top[:, j]]
            scores[rows, top[:, j]] = -1.0
        top_probabilities = (values / running[:, -1:]).astype(np.float32)
        margin, entropy = margin_and_entropy(top_probabilities)
        chosen, confidence = self.rollup.backoff_ordered(running, top, threshold)
        predictions = Predictions(
            top_indices=self.rollup.order[top],
            top_probabilities=top_probabilities,
            margin=np.asarray(margin, dtype=np.float32),
            entropy=np.asarray(entropy, dtype=np.float32),
        )
        return predictions, chosen, confidence


def is_fast_head(folder: str | Path) -> bool:
    return (Path(folder) / HEAD_FILE).exists()


def fit(embeddings: Matrix, labels: list[str], *, prior: Matrix | None = None, prior_weight: float = 0.0) -> FastHead:
    """Centroids per label; `prior`, when given, is the zero-shot score of each training item for each class (columns
    in sorted label order, as the head's), used for the leave-one-out temperature."""
    classes = sorted(set(labels))
    index = {label: i for i, label in enumerate(classes)}
    truth = np.array([index[label] for label in labels], dtype=np.int64)
    x = np.asarray(embeddings, dtype=np.float32)
    sums = np.zeros((len(classes), x.shape[1]), dtype=np.float32)
    np.add.at(sums, truth, x)
    counts = np.bincount(truth, minlength=len(classes)).astype(np.int64)
    centroids = sums / np.linalg.norm(sums, axis=1, keepdims=True).clip(min=1e-9)
    head = FastHead(
        labels=classes, centroids=centroids, counts=counts, prior_weight=prior_weight if prior is not None else 0.0
    )
    # Leave one out: each label against its own class's centroid without it (a class of one has no centroid then,
    # and its label tells nothing about the temperature).
    alone = counts[truth] > 1
    if alone.sum():
        scores = head.scores(x[alone], prior[alone] if prior is not None else None)
        own = sums[truth[alone]] - x[alone]
        own /= np.linalg.norm(own, axis=1, keepdims=True).clip(min=1e-9)
        rows = np.arange(int(alone.sum()))
        own_score = (x[alone] * own).sum(axis=1)
        if prior is not None and head.prior_weight:
            own_score = own_score + head.prior_weight * prior[alone][rows, truth[alone]]
        scores[rows, truth[alone]] = own_score
        head.temperature = fit_temperature(scores / SCALE, truth[alone])
    return head
