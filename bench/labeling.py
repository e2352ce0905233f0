"""Labeling latency at catalog scale: next item (with its suggestions) and submit, over HTTP on loopback.

    python -m bench.labeling [--items 300] [--annotators 3]

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
import urllib.request
from pathlib import Path

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


def request(method: str, url: str, token: str, body: dict[str, object] | None = None) -> tuple[float, dict]:
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
    args = parser.parse_args()
    url = bench_database()
    from rest_framework.authtoken.models import Token

    from accounts.roles import Role
    from accounts.services import roles_ensure, user_role_assign
    from catalog.models import Product
    from labeling.models import Annotation, Lease, ReviewItem
    from mlcore.models import ModelVersion, ModelVersionStatus

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


if __name__ == "__main__":
    main()
