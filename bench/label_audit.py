"""How well the label check finds wrong verified labels: the shipped PriceRunner offers, a share of their labels
flipped to another of the 10 categories, then mlcore/engine/label_audit.py (confident learning on cross-validated
probabilities) as the label check runs it: n-gram features, and, side by side, pretrained MiniLM embeddings.

    python -m bench.label_audit [--limit 10000] [--noise 0.05]

Prints precision and recall of the flagged items against the flipped ones, and how many of the untouched labels
were flagged (some are real mistakes of the source data: the check is shown a few of them). Plain Python.
"""

from __future__ import annotations

import argparse
import random
import time

from bench.accuracy import load
from mlcore.engine.label_audit import AuditResult


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=10000, help="offers to audit (a random sample)")
    parser.add_argument("--noise", type=float, default=0.05, help="share of labels flipped")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--embeddings", action="store_true", help="also audit on MiniLM embeddings (about a minute)")
    args = parser.parse_args()

    from mlcore.engine.artifacts import default_base_model
    from mlcore.engine.label_audit import audit_texts, find_label_issues
    from mlcore.engine.zeroshot import Encoder

    train, test, _ = load()
    rows = random.Random(1).sample(train + test, min(args.limit, len(train) + len(test)))
    titles, truth = [r[1] for r in rows], [r[6] for r in rows]
    classes = sorted(set(truth))
    rng = random.Random(2)
    flipped = set(rng.sample(range(len(rows)), int(args.noise * len(rows))))
    given = [rng.choice([c for c in classes if c != label]) if i in flipped else label for i, label in enumerate(truth)]
    print(f"{len(rows)} offers, {len(flipped)} labels flipped ({args.noise:.0%}), {args.folds} folds")

    if args.embeddings:
        started = time.perf_counter()
        features = Encoder(default_base_model(), device="cpu", max_length=64).embed(titles)
        embedded = find_label_issues(features, given, folds=args.folds)
        _report("MiniLM embeddings", embedded, flipped, time.perf_counter() - started)
    started = time.perf_counter()
    result = audit_texts(titles, given, folds=args.folds)
    _report("n-grams (the label check)", result, flipped, time.perf_counter() - started)
    found = {issue.index for issue in result.issues}
    hits = found & flipped
    corrected = sum(1 for issue in result.issues if issue.index in flipped and issue.suggested == truth[issue.index])
    print(f"flipped and flagged, proposed category = the true one: {corrected}/{len(hits)}")
    others = sorted(found - flipped)
    print(f"flagged although not flipped: {len(others)} (the source's own labels; a sample:)")
    for i in others[:8]:
        issue = next(x for x in result.issues if x.index == i)
        print(f"  {titles[i][:70]!r}: {given[i]} -> {issue.suggested} ({issue.suggested_probability:.0%})")


def _report(name: str, result: AuditResult, flipped: set[int], seconds: float) -> None:
    found = {issue.index for issue in result.issues}
    hits = found & flipped
    precision = len(hits) / len(found) if found else 0.0
    recall = len(hits) / len(flipped) if flipped else 0.0
    print(
        f"{name}: {seconds:.1f} s, held-out agreement {result.agreement:.3f}, flagged {len(found)}: "
        f"precision {precision:.3f}, recall {recall:.3f}"
    )


if __name__ == "__main__":
    main()
