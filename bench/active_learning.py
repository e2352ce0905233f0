"""Active learning against random sampling on both shipped catalogs, with a simulated annotator.

    python -m bench.active_learning [--catalog pricerunner,flipkart] [--batch 100] [--rounds 30] [--seed-per-class 5]

The annotator answers with the shipped ground truth. The fast setting the issue allows: the packaged MiniLM encoder,
frozen (embeddings computed once and cached), with a logistic-regression head retrained after each round of
`--batch` labels. Both strategies start from the same seed and run side by side; the script prints the labels each
needs to reach the catalog's target and writes the curves to docs/active-learning[-flipkart].svg.

- PriceRunner: split by cluster (20 % of clusters held out); target 0.95 accuracy on the held-out clusters (the
  target of the issue that asked for active learning).
- Flipkart (never tuned on): the 173 categories with >= 10 distinct titles, as the fast head's benchmark; 20 % of
  each category's distinct titles held out (a title's size and colour variants stay on one side). No frozen-encoder
  head reaches 0.95 on 173 categories, so the target is relative: 98 % of the accuracy the same head reaches with
  every title of the pool labelled (printed; the 98 % is this bench's choice, the same for both strategies).
"""

from __future__ import annotations

import argparse
import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "var" / "bench-cache"
RELATIVE_TARGET = 0.98  # Flipkart: this share of the whole pool's accuracy


@dataclass
class Catalog:
    """One catalog's simulation: embeddings, labels, the pool to label from, the held-out items, the seed."""

    name: str
    x: np.ndarray
    y: np.ndarray
    pool: list[int]
    test: list[int]
    seed: list[int]
    unit: str  # what an item is called in the printout


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


def seed_labels(y: np.ndarray, pool: list[int], per_class: int) -> list[int]:
    rng = random.Random(1)
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
    return Catalog("pricerunner", x, y, pool, test, seed_labels(y, pool, seed_per_class), "offers")


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
    return Catalog("flipkart", x, y, pool, test, seed_labels(y, pool, seed_per_class), "distinct titles")


def run(
    strategy: str,
    x: np.ndarray,
    y: np.ndarray,
    pool: list[int],
    seed: list[int],
    test: list[int],
    batch: int,
    rounds: int,
) -> list[tuple[int, float]]:
    labelled = list(seed)
    remaining = sorted(set(pool) - set(seed))
    rng = random.Random(7)
    curve = []
    for _ in range(rounds + 1):
        model = head(x[labelled], y[labelled])
        curve.append((len(labelled), float((model.predict(x[test]) == y[test]).mean())))
        if not remaining:
            break
        if strategy == "uncertainty":
            probabilities = model.predict_proba(x[remaining])
            top2 = -np.partition(-probabilities, 1, axis=1)[:, :2]
            order = np.argsort(top2[:, 0] - top2[:, 1])  # smallest margin first
            chosen = [remaining[i] for i in order[:batch]]
        else:
            chosen = rng.sample(remaining, min(batch, len(remaining)))
        labelled.extend(chosen)
        chosen_set = set(chosen)
        remaining = [i for i in remaining if i not in chosen_set]
    return curve


def head(x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, C=10).fit(x, y)


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((n for n, accuracy in curve if accuracy >= target), None)


def svg(curves: dict[str, list[tuple[int, float]]], path: Path, target: float, what: str) -> None:
    width, height, pad = 640, 320, 40
    xs = [n for curve in curves.values() for n, _ in curve]
    x_max, y_min = max(xs), 0.5
    colours = {"uncertainty": "#2459d6", "random": "#c0362c"}

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


def simulate(catalog: Catalog, batch: int, rounds: int) -> dict[str, float]:
    """Both strategies on one catalog; prints the curves' summary, writes the SVG, returns the figures."""
    full = float(
        (
            head(catalog.x[catalog.pool], catalog.y[catalog.pool]).predict(catalog.x[catalog.test])
            == catalog.y[catalog.test]
        ).mean()
    )
    target = 0.95 if catalog.name == "pricerunner" else round(RELATIVE_TARGET * full, 3)
    curves = {
        s: run(s, catalog.x, catalog.y, catalog.pool, catalog.seed, catalog.test, batch, rounds)
        for s in ("uncertainty", "random")
    }
    classes = len(set(catalog.y[catalog.pool]))
    print(
        f"active learning, {catalog.name}: {len(catalog.pool):,} {catalog.unit} to label from in {classes} categories, "
        f"{len(catalog.test):,} held out; seed {len(catalog.seed)}, rounds of {batch}; the whole pool labelled gives "
        f"{full:.4f}; target {target:.3f}"
        + ("" if catalog.name == "pricerunner" else f" ({RELATIVE_TARGET:.0%} of it)")
    )
    figures = {"full": full, "target": target, "n": len(catalog.test)}
    for name, curve in curves.items():
        reached = labels_to_reach(curve, target)
        figures[name] = reached if reached is not None else float("nan")
        print(
            f"  {name:12s} accuracy {curve[0][1]:.4f} with the seed, {curve[-1][1]:.4f} at {curve[-1][0]} labels; "
            f"reaches {target:.3f}: {reached if reached is not None else 'not within the rounds'}"
        )
    a, r = labels_to_reach(curves["uncertainty"], target), labels_to_reach(curves["random"], target)
    if a is not None and r is not None:
        figures["ratio"] = a / r
        print(f"  active learning needs {a / r:.2f} x the labels random sampling needs (target <= 0.5)")
    name = "active-learning.svg" if catalog.name == "pricerunner" else f"active-learning-{catalog.name}.svg"
    svg(curves, REPO / "docs" / name, target, "clusters" if catalog.name == "pricerunner" else "titles")
    print(f"  curves written to docs/{name}")
    return figures


CATALOGS = {"pricerunner": pricerunner, "flipkart": flipkart}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", default="pricerunner,flipkart", help="comma-separated: pricerunner, flipkart")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed-per-class", type=int, default=5)
    args = parser.parse_args()
    for name in args.catalog.split(","):
        simulate(CATALOGS[name](args.seed_per_class), args.batch, args.rounds)


if __name__ == "__main__":
    main()
