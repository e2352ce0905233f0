"""Product import throughput, and how it holds up in a big catalog.

    python -m bench.import_products [--rows 100000] [--existing 1000000]

Builds a CSV of --rows products from the shipped PriceRunner offers (distinct SKUs, half with a category), imports it
into an empty catalog, fills the catalog to --existing products, then imports another file of the same size and
shape, both in this one run. Prints rows/s and the ratio of the two times (target: 100k rows <= 60 s on 2 cores;
time at 1M existing <= 1.2 x time at 0).
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench._setup import bench_database

if TYPE_CHECKING:  # Django is set up inside main(): the module itself is imported there
    from catalog.imports.products import ProductImportReport

REPO = Path(__file__).resolve().parent.parent
OFFERS = REPO / "demo_data" / "pricerunner" / "pricerunner_aggregate.csv"


def write_products(path: Path, rows: int, prefix: str, mapping: dict[str, str]) -> None:
    offers = list(csv.reader(OFFERS.open(encoding="utf-8")))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "title", "brand", "category", "merchant_id"])
        for i in range(rows):
            _product_id, title, merchant_id, _cluster, _label, _cat_id, category = offers[i % len(offers)]
            writer.writerow([f"{prefix}-{i}", title, title.split()[0], mapping[category] if i % 2 else "", merchant_id])


def fill(existing: int) -> float:
    """Existing products straight through COPY: the benchmark measures the importer, not the filler."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM catalog_product")
        have = cursor.fetchone()[0]
        raw = cursor.connection
        with raw.cursor().copy(
            "COPY catalog_product (sku, title, description, brand, attributes, category_source, is_verified, "
            "version, created_at, updated_at) FROM STDIN"
        ) as copy:
            buffer = io.StringIO()
            for i in range(have, existing):
                buffer.write(f"FILL-{i}\tfiller product number {i}\t\tAcme\t{{}}\t\tf\t1\tnow\tnow\n")
                if i % 50_000 == 0:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        cursor.execute("ANALYZE catalog_product")
    return time.perf_counter() - started


def timed_import(path: Path) -> tuple[float, ProductImportReport]:
    from catalog.imports.products import product_import

    started = time.perf_counter()
    report = product_import(path=path)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--existing", type=int, default=1_000_000)
    args = parser.parse_args()
    url = bench_database()
    from django.core.management import call_command

    from catalog.models import Category, CategoryChange, Product

    CategoryChange.objects.all().delete()
    Product.objects.all().delete()
    if not Category.objects.exists():
        call_command("load_demo", limit=1, seed_per_category=0, verbosity=0)
        Product.objects.all().delete()
    from catalog.management.commands.load_demo import merchant_node_id

    mapping = {}
    for row in csv.DictReader((REPO / "demo_data" / "pricerunner" / "category_map.csv").open(encoding="utf-8")):
        extends = row["extends_shopify"] == "yes"
        mapping[row["pricerunner_category"]] = (
            merchant_node_id(row["pricerunner_category"]) if extends else row["shopify_node"]
        )
    print(f"database: {url.rsplit('@', 1)[-1]}; rows per file: {args.rows:,}")
    with tempfile.TemporaryDirectory() as tmp:
        first, second = Path(tmp) / "first.csv", Path(tmp) / "second.csv"
        write_products(first, args.rows, "A", mapping)
        write_products(second, args.rows, "B", mapping)
        t_empty, report = timed_import(first)
        print(
            f"import into an empty catalog:      {t_empty:6.1f} s  {args.rows / t_empty:8,.0f} rows/s  "
            f"(created {report.created:,})"
        )
        t_same, report = timed_import(first)
        print(
            f"re-import, nothing changed:        {t_same:6.1f} s  {args.rows / t_same:8,.0f} rows/s  "
            f"(unchanged {report.unchanged:,})"
        )
        t_fill = fill(args.existing)
        print(f"(filled the catalog to {Product.objects.count():,} products in {t_fill:.0f} s)")
        t_big, report = timed_import(second)
        print(
            f"import into a {args.existing:,}-product catalog: {t_big:6.1f} s  {args.rows / t_big:8,.0f} rows/s  "
            f"(created {report.created:,})"
        )
    print(f"ratio big/empty: {t_big / t_empty:.2f}  (target <= 1.2)")


if __name__ == "__main__":
    main()
