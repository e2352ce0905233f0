"""Inter-annotator agreement: Cohen's kappa per annotator pair and per top-level category, and each annotator's
agreement with adjudicated labels. Plain counting: no ML library in the web process."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations


def cohen_kappa(pairs: Iterable[tuple[object, object]]) -> float | None:
    """Kappa of two raters over items both rated; None when undefined (no items, or chance agreement is 1)."""
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


@dataclass(frozen=True)
class PairAgreement:
    first: str
    second: str
    items: int
    kappa: float | None


def pairwise_kappa(labels: dict[int, dict[str, int]]) -> list[PairAgreement]:
    """labels: product -> {annotator: category}. One row per annotator pair with common items."""
    by_pair: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for answers in labels.values():
        for a, b in combinations(sorted(answers), 2):
            by_pair[(a, b)].append((answers[a], answers[b]))
    return [PairAgreement(a, b, len(pairs), cohen_kappa(pairs)) for (a, b), pairs in sorted(by_pair.items())]


def kappa_by_group(labels: dict[int, dict[str, int]], group_of: dict[int, str]) -> dict[str, float | None]:
    """Kappa over all pairs of answers on the same item, grouped (e.g. by the item's top-level category)."""
    grouped: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for product, answers in labels.items():
        for a, b in combinations(sorted(answers), 2):
            grouped[group_of.get(product, "?")].append((answers[a], answers[b]))
    return {group: cohen_kappa(pairs) for group, pairs in sorted(grouped.items())}
