"""Reclassification at catalog scale: build a batch, read its pages, approve, apply and undo it, on PostgreSQL.

    python -m bench.reclassification [--catalog 1100000] [--proposals 100000] [--sample 1000] [--requests 30]

Uses the bench database (`shelfwise_bench`; filled to --catalog products through COPY if it holds fewer). Half of the
products get an imported category (one of 200 leaves), every product a stored prediction over two leaves (COPY), with
confidences drawn so that about --proposals of them reach the version's threshold and differ from the category of
record. Then, in this one run:

- build the batch (the job's code, in this process), target <= 60 s;
- the batch page and a group's page (first and a later keyset page) through Django's test client as a manager,
  --requests each: p50/p99, target p99 <= 300 ms;
- approve everything by one filter decision; apply the whole batch, target <= 30 s; undo it, target <= 30 s;
- the per-product path (`product_category_set` in a loop, the door an annotator's answer takes) on --sample other
  products, side by side: apply must be >= 50x faster per product.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time

from bench._setup import bench_database

THRESHOLD = 0.9
VERSION_NUMBER = 90_002


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def catalog(size: int) -> tuple[int, list[int]]:
    """At least `size` products, half of them filed under one of 200 leaves (imported, unverified)."""
    from django.core.management import call_command
    from django.db import connection

    from bench.import_products import fill
    from catalog.models import Category, Product

    if not Category.objects.exists():
        call_command("load_demo", limit=1, seed_per_category=0, verbosity=0)
        Product.objects.all().delete()
    if Product.objects.count() < size:
        fill(size)
    leaves = list(
        Category.objects.filter(has_children=False, is_active=True).order_by("pk").values_list("pk", flat=True)
    )
    rng = random.Random(0)
    chosen = sorted(rng.sample(leaves, 200))
    with connection.cursor() as cursor:
        # A clean start: every product unverified, half filed by an import (the same half every run).
        cursor.execute(
            "UPDATE catalog_product SET is_verified = false, category_set_by_id = NULL, "
            "category_id = CASE WHEN id %% 2 = 0 THEN (%s::bigint[])[1 + (id / 2) %% 200] END, "
            "category_source = CASE WHEN id %% 2 = 0 THEN 'import' ELSE '' END",
            [chosen],
        )
        cursor.execute("ANALYZE catalog_product")
    return Product.objects.count(), chosen


def predictions(version_id: int, leaves: list[int], target: int, total: int) -> int:
    """A stored prediction for every product: two leaves; a share confident enough to be proposed."""
    from django.db import connection

    from catalog.models import Product
    from mlcore.models import Prediction

    Prediction.objects.filter(model_version_id=version_id).delete()
    rng = random.Random(1)
    # Products whose choice equals their category propose nothing: about 1/200 of the filed half.
    sure_share = min(1.0, target / total)
    ids = list(Product.objects.order_by("id").values_list("id", flat=True))
    buffer = io.StringIO()
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(
            "COPY mlcore_prediction (product_id, model_version_id, top, category_id, confidence, margin, entropy, "
            "created_at) FROM STDIN"
        ) as copy,
    ):
        for count, pk in enumerate(ids, 1):
            first, second = rng.sample(leaves, 2)
            p = rng.uniform(THRESHOLD + 0.01, 0.99) if rng.random() < sure_share else rng.uniform(0.3, THRESHOLD - 0.2)
            q = rng.uniform(0, min(1 - p, 0.05))
            buffer.write(
                f"{pk}\t{version_id}\t[[{first}, {p:.4f}], [{second}, {q:.4f}]]\t{first}\t{p}\t{p - q}\t0.5\tnow\n"
            )
            if count % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE mlcore_prediction")
    return len(ids)


def timed(label: str, work: object) -> float:
    started = time.perf_counter()
    work()  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    print(f"{label:<44} {elapsed:7.1f} s")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=int, default=1_100_000)
    parser.add_argument("--proposals", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    url = bench_database()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db.models import Exists, Max, Min, OuterRef
    from django.test import Client
    from django.urls import reverse

    from accounts.roles import Role
    from accounts.services import roles_ensure, user_role_assign
    from catalog.models import CategoryChange, CategorySource, Product
    from catalog.services.labels import product_category_set
    from core.models import JobStatus
    from labeling.models import (
        ReclassificationAction,
        ReclassificationBatch,
        ReclassificationJob,
        ReclassificationProposal,
    )
    from labeling.selectors import ProposalFilters
    from labeling.services.reclassification import proposals_decide, reclassification_job_run
    from mlcore.models import ModelVersion, ModelVersionStatus

    settings.ALLOWED_HOSTS = ["*"]
    started = time.perf_counter()
    total, leaves = catalog(args.catalog)
    ReclassificationBatch.objects.all().delete()
    ReclassificationJob.objects.all().delete()
    CategoryChange.objects.filter(source=CategorySource.RECLASSIFICATION).delete()
    ModelVersion.objects.filter(number=VERSION_NUMBER).delete()
    version = ModelVersion.objects.create(
        number=VERSION_NUMBER,
        base_model="bench",
        status=ModelVersionStatus.READY,
        metrics={"test": {"coverage_at_99": {"coverage": 0.5, "threshold": THRESHOLD}}},
    )
    predictions(version.pk, leaves, args.proposals, total)
    print(f"database: {url.rsplit('@', 1)[-1]}; {total:,} products, set up in {time.perf_counter() - started:.0f} s")

    roles_ensure()
    manager, _ = get_user_model().objects.get_or_create(username="bench-manager")
    user_role_assign(user=manager, role=Role.CATALOG_MANAGER)

    def run(action: str, **fields: object) -> ReclassificationJob:
        job = ReclassificationJob.objects.create(action=action, model_version=version, created_by=manager, **fields)
        reclassification_job_run(job_id=job.pk)
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, job.error
        return job

    holder: dict[str, ReclassificationJob] = {}
    t_build = timed("build the batch", lambda: holder.update(build=run(ReclassificationAction.BUILD)))
    batch = holder["build"].batch
    assert batch is not None
    n = ReclassificationProposal.objects.filter(batch=batch).count()
    print(f"  {n:,} proposals")

    client = Client()
    client.force_login(manager)
    batch_url = reverse("reclassify:batch", args=[batch.pk])
    group = (
        ReclassificationProposal.objects.filter(batch=batch, kind="change")
        .values("from_category_id", "to_category_id")
        .first()
    )
    assert group is not None
    group_url = reverse("reclassify:group", args=[batch.pk])
    query = {"kind": "change", "from": str(group["from_category_id"]), "to": str(group["to_category_id"])}
    pages: dict[str, list[float]] = {"batch page": [], "group page": []}
    for _ in range(args.requests):
        for name, target, params in (("batch page", batch_url, {}), ("group page", group_url, query)):
            began = time.perf_counter()
            response = client.get(target, params)
            pages[name].append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, response.status_code
    for name, values in pages.items():
        print(
            f"{name:<44} p50 {statistics.median(values):6.0f} ms  p99 {percentile(values, 0.99):6.0f} ms"
            "  (target p99 <= 300 ms)"
        )

    t_approve = timed(
        "approve all (one filter decision)",
        lambda: proposals_decide(batch_id=batch.pk, decision="approve", user=manager, filters=ProposalFilters()),
    )
    del t_approve
    t_apply = timed("apply the batch", lambda: holder.update(apply=run(ReclassificationAction.APPLY, batch=batch)))
    applied = holder["apply"]
    print(f"  {applied.done:,} applied, {applied.skipped:,} skipped  (target <= 30 s)")

    # The per-product path on products outside the batch, side by side in this run.
    # Random products outside the batch (candidate ids drawn in Python: ORDER BY random() over 1M rows is a benchmark
    # of its own, and NOT IN over 100k ids a pathological plan).
    in_batch = ReclassificationProposal.objects.filter(batch=batch, product_id=OuterRef("pk"))
    low, high = Product.objects.aggregate(low=Min("pk"), high=Max("pk")).values()
    candidates = random.Random(3).sample(range(low, high + 1), min(args.sample * 4, high - low + 1))
    outside = list(
        Product.objects.filter(pk__in=candidates).filter(~Exists(in_batch)).values_list("pk", "version")[: args.sample]
    )
    rng = random.Random(2)

    def one_by_one() -> None:
        for pk, product_version in outside:
            product_category_set(
                product_id=pk,
                category_id=rng.choice(leaves),
                expected_version=product_version,
                source=CategorySource.RECLASSIFICATION,
                actor=manager,
                verified=False,
            )

    t_loop = timed(f"per-product path, {len(outside):,} products", one_by_one)
    per_bulk = t_apply / max(applied.done, 1)
    per_loop = t_loop / max(len(outside), 1)
    print(
        f"  per product: bulk {per_bulk * 1000:.3f} ms, loop {per_loop * 1000:.3f} ms: "
        f"apply is {per_loop / per_bulk:.0f}x faster  (target >= 50x)"
    )
    t_undo = timed("undo the batch", lambda: holder.update(undo=run(ReclassificationAction.UNDO, batch=batch)))
    undone = holder["undo"]
    print(f"  {undone.done:,} undone, {undone.skipped:,} skipped  (target <= 30 s)")
    print(
        f"summary: build {t_build:.1f} s (<= 60), apply {t_apply:.1f} s (<= 30), undo {t_undo:.1f} s (<= 30), "
        f"bulk/loop {per_loop / per_bulk:.0f}x (>= 50)"
    )


if __name__ == "__main__":
    main()
