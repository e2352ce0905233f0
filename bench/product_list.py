"""Product list latency in a big catalog: the filters the page offers, first page and a deep page, side by side with
a plain `SELECT ... LIMIT 50` of the same table as the baseline (the floor any filter can reach).

    python -m bench.product_list   # after bench.import_products has filled the bench database to 1M products
"""

from __future__ import annotations

import statistics
import time

from bench._setup import bench_database


def timed(fn, repeat: int = 7) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    bench_database()
    from catalog import selectors
    from catalog.models import Category, Product

    total = Product.objects.count()
    if total < 100_000:
        raise SystemExit("Run `python -m bench.import_products` first: it fills the bench database.")
    kitchen = Category.objects.get(external_id="hg-11")  # Kitchen & Dining: a big subtree
    dish = Category.objects.get(external_id="hg-11-7-9")
    deep = Product.objects.order_by("-id").values_list("id", flat=True)[total // 2]
    cases = {
        "no filter": selectors.ProductFilters(),
        "search 'iphone'": selectors.ProductFilters(q="iphone"),
        "subtree Kitchen & Dining": selectors.ProductFilters(category_id=kitchen.pk),
        "leaf Dishwashers": selectors.ProductFilters(category_id=dish.pk),
        "source=import, unverified": selectors.ProductFilters(source="import", verified=False),
        "uncategorised": selectors.ProductFilters(uncategorised=True),
    }
    baseline = timed(lambda: list(Product.objects.order_by("-id")[:51]))
    print(f"{total:,} products; baseline (plain first 50 by id): {baseline:.1f} ms")
    for name, filters in cases.items():
        first = timed(lambda f=filters: selectors.product_page(filters=f, before_id=None))
        deep_page = timed(lambda f=filters: selectors.product_page(filters=f, before_id=deep))
        print(
            f"  {name:28s} first page {first:7.1f} ms ({first / baseline:5.1f}x)   "
            f"page in the middle {deep_page:7.1f} ms ({deep_page / baseline:5.1f}x)"
        )


if __name__ == "__main__":
    main()
