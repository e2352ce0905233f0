"""Active learning against random sampling, on the shipped offers with a simulated annotator.

    python -m bench.active_learning [--batch 100] [--rounds 30] [--seed-per-class 5]

The annotator answers with the shipped ground truth. Train and test are split by cluster (20 % of clusters held out).
The fast setting the issue allows: the packaged MiniLM encoder, frozen (embeddings computed once and cached), with a
logistic-regression head retrained after each round of `--batch` labels. Both strategies start from the same seed and
run side by side; the script prints the labels each needs to reach 0.95 accuracy and writes the curves to
docs/active-learning.svg.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "var" / "bench-cache" / "pricerunner-minilm.npy"
TARGET = 0.95


def embeddings(titles: list[str]) -> np.ndarray:
    if CACHE.exists():
        cached = np.load(CACHE)
        if len(cached) == len(titles):
            return cached
    from mlcore.engine.artifacts import default_base_model
    from mlcore.engine.zeroshot import Encoder

    vectors = Encoder(default_base_model()).embed(titles)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.save(CACHE, vectors)
    return vectors


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
    from sklearn.linear_model import LogisticRegression

    labelled = list(seed)
    remaining = sorted(set(pool) - set(seed))
    rng = random.Random(7)
    curve = []
    for _ in range(rounds + 1):
        model = LogisticRegression(max_iter=1000, C=10)
        model.fit(x[labelled], y[labelled])
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


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((n for n, accuracy in curve if accuracy >= target), None)


def svg(curves: dict[str, list[tuple[int, float]]], path: Path) -> None:
    width, height, pad = 640, 320, 40
    xs = [n for curve in curves.values() for n, _ in curve]
    x_max, y_min = max(xs), 0.5
    colours = {"uncertainty": "#2459d6", "random": "#c0362c"}

    def point(n: int, accuracy: float) -> str:
        x = pad + (n / x_max) * (width - 2 * pad)
        y = height - pad - (max(accuracy, y_min) - y_min) / (1 - y_min) * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    target_y = point(0, TARGET).split(",")[1]
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
        f'<line x1="{pad}" y1="{target_y}" x2="{width - pad}" y2="{target_y}" stroke="#999" '
        f'stroke-dasharray="4"/><text x="{width - pad - 60}" y="{float(target_y) - 4}">0.95</text>',
        f'<text x="{pad}" y="{height - 10}">labels (0 .. {x_max})</text>',
        f'<text x="4" y="{pad - 10}">accuracy on held-out clusters (0.5 .. 1)</text>',
    ]
    for i, (name, curve) in enumerate(curves.items()):
        points = " ".join(point(n, a) for n, a in curve)
        lines.append(f'<polyline fill="none" stroke="{colours[name]}" stroke-width="2" points="{points}"/>')
        lines.append(f'<text x="{width - 170}" y="{height - pad - 40 + 16 * i}" fill="{colours[name]}">{name}</text>')
    lines.append("</svg>")
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed-per-class", type=int, default=5)
    args = parser.parse_args()
    rows = list(csv.reader((REPO / "demo_data" / "pricerunner" / "pricerunner_aggregate.csv").open(encoding="utf-8")))
    clusters = sorted({r[3] for r in rows})
    held_out = set(random.Random(0).sample(clusters, len(clusters) // 5))
    x = embeddings([r[1] for r in rows])
    y = np.array([r[6] for r in rows])
    pool = [i for i, r in enumerate(rows) if r[3] not in held_out]
    test = [i for i, r in enumerate(rows) if r[3] in held_out]
    rng = random.Random(1)
    seed: list[int] = []
    for label in sorted(set(y)):
        members = [i for i in pool if y[i] == label]
        seed.extend(rng.sample(members, args.seed_per_class))
    curves = {s: run(s, x, y, pool, seed, test, args.batch, args.rounds) for s in ("uncertainty", "random")}
    print(f"{len(pool):,} offers to label from, {len(test):,} held out; seed {len(seed)}, rounds of {args.batch}")
    for name, curve in curves.items():
        reached = labels_to_reach(curve, TARGET)
        print(
            f"  {name:12s} final accuracy {curve[-1][1]:.4f} at {curve[-1][0]} labels; "
            f"reaches {TARGET}: {reached if reached is not None else 'not within the rounds'}"
        )
    a, r = labels_to_reach(curves["uncertainty"], TARGET), labels_to_reach(curves["random"], TARGET)
    if a is not None and r is not None:
        print(f"  active learning needs {a / r:.2f} x the labels random sampling needs (target <= 0.5)")
    svg(curves, REPO / "docs" / "active-learning.svg")
    print("  curves written to docs/active-learning.svg")


if __name__ == "__main__":
    main()
