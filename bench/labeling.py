"""Labeling latency at catalog scale: next item (with its suggestions) and submit, over HTTP on loopback.

    python -m bench.labeling [--items 300] [--annotators 3]
    python -m bench.labeling --load 20 --seconds 60     # 20 annotators at once, each its own process

With --load, N annotator processes label as fast as the server answers for --seconds, then the database is checked:
no item answered by more annotators than its overlap allows (LABELING_OVERLAP, plus the double-labelled share), no
annotation lost (every 2xx answer is a row) or duplicated (one row per client key, per annotator and item).

Uses the bench database that `python -m bench.import_products` fills (1.1M products). Stored scores for every product
are written straight through COPY (random margins: the queue's cost does not depend on what the model learned), a
gunicorn with 2 workers serves the real API, and annotators take turns: GET /api/v1/queue/next, then
POST /api/v1/annotations with the first suggestion. Prints p50/p99 per request (target p99 <= 100 ms).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench._setup import bench_database

REPO = Path(__file__).resolve().parent.parent
PORT = 8765


def stored_scores(version_id: int) -> int:
    """A prediction for every product (two categories, random margin), written with COPY."""
    from django.db import connection

    from catalog.models import Category, Product
    from mlcore.models import Prediction

    Prediction.objects.filter(model_version_id=version_id).delete()
    leaves = list(Category.objects.filter(has_children=False).values_list("pk", flat=True)[:50])
    rng = random.Random(0)
    buffer = io.StringIO()
    count = 0
    # All ids first: the connection cannot read a cursor while it is busy with a COPY.
    ids = list(Product.objects.order_by("id").values_list("id", flat=True))
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(
            "COPY mlcore_prediction (product_id, model_version_id, top, category_id, confidence, margin, entropy, "
            "created_at) FROM STDIN"
        ) as copy,
    ):
        for pk in ids:
            first, second = rng.sample(leaves, 2)
            p = rng.uniform(0.3, 0.99)
            q = rng.uniform(0, 1 - p)
            buffer.write(
                f"{pk}\t{version_id}\t[[{first}, {p:.4f}], [{second}, {q:.4f}]]\t{first}\t{p}\t{p - q}\t0.5\tnow\n"
            )
            count += 1
            if count % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE mlcore_prediction")
    return count


def request(method: str, url: str, token: str, body: dict[str, object] | None = None) -> tuple[float, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Authorization": f"Token {token}", "Content-Type": "application/json"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as response:
        payload = response.read()
    return (time.perf_counter() - started) * 1000, json.loads(payload) if payload else {}


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--annotators", type=int, default=3)
    parser.add_argument("--load", type=int, default=0, help="annotators labelling at once, one process each")
    parser.add_argument("--seconds", type=int, default=60, help="with --load: for how long")
    parser.add_argument(
        "--think", type=float, default=0.0, help="with --load: seconds each annotator looks at an item (0: flat out)"
    )
    parser.add_argument("--fill", type=int, default=0, help="first fill the bench catalog to this many products")
    args = parser.parse_args()
    if args.load:
        args.annotators = args.load
    url = bench_database()
    from rest_framework.authtoken.models import Token

    from accounts.roles import Role
    from accounts.services import roles_ensure, user_role_assign
    from catalog.models import Product
    from labeling.models import Annotation, Lease, ReviewItem
    from mlcore.models import ModelVersion, ModelVersionStatus

    if args.fill:
        from django.core.management import call_command

        from bench.import_products import fill
        from catalog.models import Category

        if not Category.objects.exists():
            call_command("load_demo", limit=1, seed_per_category=0, verbosity=0)  # the Shopify taxonomy
        if Product.objects.count() < args.fill:
            print(f"filled the bench catalog to {args.fill:,} products in {fill(args.fill):.0f} s")
    total = Product.objects.count()
    if total < 100_000:
        raise SystemExit("Run `python -m bench.import_products` first: it fills the bench database.")
    Annotation.objects.all().delete()
    Lease.objects.all().delete()
    ReviewItem.objects.all().delete()
    ModelVersion.objects.update(is_serving=False)
    ModelVersion.objects.filter(number=90_001).delete()
    version = ModelVersion.objects.create(
        number=90_001, base_model="bench", status=ModelVersionStatus.READY, is_serving=True
    )
    started = time.perf_counter()
    scored = stored_scores(version.pk)
    print(f"{total:,} products; stored scores for {scored:,} in {time.perf_counter() - started:.0f} s")
    roles_ensure()
    from django.contrib.auth import get_user_model

    tokens = []
    for i in range(args.annotators):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-annotator-{i}")
        user_role_assign(user=user, role=Role.ANNOTATOR)
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "1", "LABELING_RETRAIN_EVERY": "0"}
    # Two worker processes for two cores; with --load, four threads each, so 20 annotators wait on the database and
    # not on a free worker.
    threads = ["--threads", "4"] if args.load else []
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            "2",
            *threads,
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{PORT}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        if args.load:
            load(base, tokens, args.seconds, args.think)
            return
        next_ms, submit_ms, strategies = [], [], []
        for i in range(args.items):
            token = tokens[i % len(tokens)]
            elapsed, item = request("GET", f"{base}/api/v1/queue/next", token)
            next_ms.append(elapsed)
            strategies.append(item["strategy"])
            category = item["suggestions"][0]["category_id"]
            elapsed, _ = request(
                "POST",
                f"{base}/api/v1/annotations",
                token,
                {
                    "product": item["product"]["id"],
                    "category": category,
                    "product_version": item["product"]["version"],
                    "client_key": f"bench-{i}",
                },
            )
            submit_ms.append(elapsed)
    finally:
        server.terminate()
        server.wait(timeout=30)
    both = [a + b for a, b in zip(next_ms, submit_ms, strict=True)]
    print(
        f"{args.items} items by {args.annotators} annotators over HTTP (gunicorn, 2 workers), strategies: "
        f"{ {s: strategies.count(s) for s in set(strategies)} }"
    )
    for name, values in (("next item + suggestions", next_ms), ("submit", submit_ms), ("both", both)):
        print(f"  {name:24s} p50 {statistics.median(values):6.1f} ms   p99 {percentile(values, 0.99):6.1f} ms")
    for strategy in sorted(set(strategies)):
        values = [ms for ms, s in zip(next_ms, strategies, strict=True) if s == strategy]
        print(f"  next, {strategy:18s} p50 {statistics.median(values):6.1f} ms   max {max(values):6.1f} ms")


def _annotator(arguments: tuple[str, str, int, int, float]) -> dict[str, Any]:
    """One annotator's session: next item, answer with its first suggestion, until the time is up. A submit that
    fails on the network is sent again with the same client key (the API makes that idempotent)."""
    base, token, seconds, number, think = arguments
    next_ms: list[float] = []
    submit_ms: list[float] = []
    keys: list[str] = []
    errors: list[str] = []
    empty = 0
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        try:
            elapsed, item = request("GET", f"{base}/api/v1/queue/next", token)
        except Exception as exc:  # counted and shown: the bench reports what went wrong, it does not stop
            errors.append(f"next: {exc}")
            continue
        next_ms.append(elapsed)
        if not item:
            empty += 1
            continue
        time.sleep(think)  # a person reading the item before answering
        key = f"load-{number}-{len(keys)}"
        body = {
            "product": item["product"]["id"],
            "category": item["suggestions"][0]["category_id"],
            "product_version": item["product"]["version"],
            "client_key": key,
        }
        for _attempt in range(3):
            try:
                elapsed, _ = request("POST", f"{base}/api/v1/annotations", token, body)
            except urllib.error.HTTPError as exc:
                errors.append(f"submit {exc.code}: {exc.read()[:200]!r}")
                break
            except Exception as exc:
                errors.append(f"submit: {exc}")
                continue
            submit_ms.append(elapsed)
            keys.append(key)
            break
    return {"next": next_ms, "submit": submit_ms, "keys": keys, "errors": errors, "empty": empty}


def load(base: str, tokens: list[str], seconds: int, think: float) -> None:
    import multiprocessing

    from django.conf import settings
    from django.db import connections
    from django.db.models import Count

    from labeling.models import Annotation, AnnotationKind

    connections.close_all()  # the children open none; the parent reads again after they end
    with multiprocessing.get_context("fork").Pool(len(tokens)) as pool:
        sessions = pool.map(_annotator, [(base, token, seconds, i, think) for i, token in enumerate(tokens)])
    next_ms = [ms for session in sessions for ms in session["next"]]
    submit_ms = [ms for session in sessions for ms in session["submit"]]
    keys = [key for session in sessions for key in session["keys"]]
    errors = [error for session in sessions for error in session["errors"]]
    rows = Annotation.objects.filter(client_key__startswith="load-")
    per_item = rows.filter(kind=AnnotationKind.LABEL).values("product_id").annotate(n=Count("id"))
    most = max((row["n"] for row in per_item), default=0)
    twice = sum(1 for row in per_item if row["n"] == 2)
    stored_keys = list(rows.values_list("client_key", flat=True))
    pairs = rows.values("product_id", "annotator_id").annotate(n=Count("id")).filter(n__gt=1).count()
    print(
        f"{len(tokens)} annotators at once for {seconds} s, {think} s per item (gunicorn, 2 workers x 4 threads): "
        f"{len(keys):,} answers "
        f"({len(keys) / seconds:.0f}/s), {len(errors)} errors, {sum(s['empty'] for s in sessions)} empty queues"
    )
    # Every annotator's first request arrives in the same instant, at a server that has served nothing yet.
    settled = [ms for session in sessions for ms in session["next"][1:]]
    for name, values in (
        ("next item + suggestions", next_ms),
        ("  after each one's first", settled),
        ("submit", submit_ms),
    ):
        if values:
            print(f"  {name:24s} p50 {statistics.median(values):6.1f} ms   p99 {percentile(values, 0.99):6.1f} ms")
    allowed = settings.LABELING_OVERLAP + (1 if settings.LABELING_DOUBLE_SHARE else 0)
    print(
        f"  most annotators on one item: {most} (allowed {allowed}); items labelled twice: {twice:,} of "
        f"{len(per_item):,}; answers acknowledged {len(keys):,}, rows {len(stored_keys):,}, "
        f"acknowledged but missing {len(set(keys) - set(stored_keys))}, duplicated (annotator, item) {pairs}"
    )
    for error in errors[:5]:
        print("  error:", error)


if __name__ == "__main__":
    main()
