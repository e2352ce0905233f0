"""Fast-head variants that were tried and not kept, measured on both catalogs in one run, so that the README's
"tried and not kept" has a command behind it.

    python -m bench.fasthead_variants

The same samples as bench.accuracy's fast head (5 labels per category: PriceRunner's 10 categories, judged on its
7,109 test offers; Flipkart's 173 categories with >= 10 distinct titles, 9,666 held out) and the shipped fast head
(mlcore/engine/fasthead.py, the zero-shot prior at 0.5) as the baseline.

- label spreading (Zhou et al., "Learning with local and global consistency", NIPS 2004): the fast head's
  probabilities for every title of the catalog, the labelled titles set to their label, smoothed over the catalog's
  k-nearest-neighbour graph (F <- alpha S F + (1 - alpha) Y, S the symmetrically normalised graph). It reads the
  catalog's unlabelled titles (PriceRunner: the test offers; Flipkart: every distinct title, other categories too),
  never their labels.

A variant is kept only if it wins on both catalogs, with its constants chosen on one and reported on the other.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from bench import accuracy
from bench.zeroshot_variants import cached_embeddings

PRIOR_WEIGHT = 0.5  # the product's MLCORE_FAST_HEAD_PRIOR_WEIGHT


def knn_graph(x: np.ndarray, k: int, block: int = 2048) -> sp.csr_matrix:
    """The symmetric k-nearest-neighbour graph of unit vectors (cosine weights, negatives cut to 0), normalised as
    D^-1/2 W D^-1/2. Exact, by blocks of rows: a catalog of 30,000 titles here; a larger one wants an ANN index."""
    n = len(x)
    rows, cols, weights = [], [], []
    for start in range(0, n, block):
        similarity = x[start : start + block] @ x.T
        similarity[np.arange(len(similarity)), np.arange(start, start + len(similarity))] = -1.0  # not itself
        top = np.argpartition(-similarity, k, axis=1)[:, :k]
        rows.append(np.repeat(np.arange(start, start + len(similarity)), k))
        cols.append(top.ravel())
        weights.append(np.maximum(np.take_along_axis(similarity, top, axis=1).ravel(), 0.0))
    graph = sp.csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    graph = graph.maximum(graph.T)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    scale = sp.diags(1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)))
    return sp.csr_matrix(scale @ graph @ scale)


def spread(graph: sp.csr_matrix, seeds: np.ndarray, alpha: float, iterations: int = 20) -> np.ndarray:
    """Label spreading's fixed point, by iteration (20 rounds: alpha^20 of the start is left at alpha = 0.5-0.8)."""
    spread_scores = seeds.copy()
    for _ in range(iterations):
        spread_scores = alpha * (graph @ spread_scores) + (1 - alpha) * seeds
    return np.asarray(spread_scores)


def main() -> None:
    from mlcore.engine.artifacts import default_base_model
    from mlcore.engine.fasthead import fit
    from mlcore.engine.zeroshot import Encoder

    encoder = Encoder(default_base_model())
    _, test, mapping = accuracy.load()
    _, shopify, scorer = accuracy.shopify_scorer(encoder)
    samples = accuracy.few_shot_samples(encoder, scorer, shopify.index(), mapping, test, accuracy.CACHE)
    print(f"label spreading seeded by the fast head (prior weight {PRIOR_WEIGHT}); top-1 on the held-out titles")
    for name, sample in samples.items():
        texts = sample.shot_texts + sample.test_texts + sample.other_texts
        x = cached_embeddings(encoder, f"fasthead-{name}", texts)
        shots = np.arange(len(sample.shot_texts))
        held = np.arange(len(shots), len(shots) + len(sample.test_texts))
        prior = sample.prior_of(x)
        head = fit(x[shots], sample.shot_labels, prior=prior[shots], prior_weight=PRIOR_WEIGHT)
        probabilities = head.predict(x, prior, top_k=1, keep_probabilities=True).probabilities
        assert probabilities is not None
        truth = np.array([head.labels.index(label) for label in sample.test_labels])
        seeds = probabilities.copy()
        seeds[shots] = 0.0
        seeds[shots, [head.labels.index(label) for label in sample.shot_labels]] = 1.0
        print(
            f"{name}: {len(head.labels)} categories, {len(held):,} held out, {len(texts):,} titles in the graph; "
            f"fast head {np.mean(probabilities[held].argmax(axis=1) == truth):.3f}",
            flush=True,
        )
        for k in (10, 20):
            started = time.perf_counter()
            graph = knn_graph(x, k)
            built = time.perf_counter() - started
            cells = []
            for alpha in (0.3, 0.5, 0.8):
                started = time.perf_counter()
                spread_scores = spread(graph, seeds, alpha)
                cells.append(
                    f"alpha={alpha}: {np.mean(spread_scores[held].argmax(axis=1) == truth):.3f} "
                    f"({time.perf_counter() - started:.1f} s)"
                )
            print(f"  k={k:<3d} (graph {built:.1f} s)  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
