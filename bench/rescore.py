"""Re-scoring throughput on PostgreSQL: end-to-end (read, tokenize, infer, COPY) against model-only inference and
against the naive path (one pipeline() call per product + bulk_update), side by side; and COPY against bulk_update.

    python -m bench.rescore [--n 100000] [--naive 1000] [--rounds 5]
    python -m bench.rescore --fast [--n 1000000] [--classes 1000] [--workers 2]

Runs on the bench database that `python -m bench.import_products` fills (products are real offer titles). The model
is the packaged MiniLM with a 10-way head: speed does not depend on what the head learned.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench._setup import bench_database

REPO = Path(__file__).resolve().parent.parent


def bench_model(folder: Path) -> Path:
    if (folder / "model.safetensors").exists():
        return folder
    from transformers import AutoTokenizer

    from mlcore.engine.artifacts import default_base_model
    from mlcore.engine.pooled import model_class

    labels = [str(i) for i in range(10)]
    model = model_class().from_pretrained(
        default_base_model(),
        num_labels=10,
        id2label=dict(enumerate(labels)),
        label2id={x: i for i, x in enumerate(labels)},
    )
    model.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(default_base_model()).save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=1000, help="products for the (slow) naive path, in all")
    parser.add_argument("--rounds", type=int, default=5, help="turns the three paths take, one after the other")
    parser.add_argument("--fast", action="store_true", help="re-score with a fast head from stored embeddings instead")
    parser.add_argument("--classes", type=int, default=1000, help="the fast head's categories (with --fast)")
    parser.add_argument(
        "--workers", type=int, default=2, help="with --fast: also run the job in this many processes (2 cores: 2)"
    )
    args = parser.parse_args()
    bench_database()
    if args.fast:
        fast(args.n, args.classes, args.workers)
        return
    from django.db import transaction
    from django.utils import timezone

    from catalog.models import Category, Product
    from mlcore.engine.prediction import Classifier
    from mlcore.models import ModelVersion, ModelVersionStatus, Prediction, RescoreChunk, RescoreJob
    from mlcore.services.rescoring import rescore_chunk, rescore_job_run_here
    from mlcore.services.scoring import predictions_write

    folder = bench_model(REPO / "var" / "bench-models" / "minilm-10")
    # The head's labels must be category ids: map 0..9 onto real categories of the bench catalog.
    category_ids = list(Category.objects.filter(has_children=False).values_list("pk", flat=True)[:10])
    import json

    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["id2label"] = {str(i): str(pk) for i, pk in enumerate(category_ids)}
    config["label2id"] = {str(pk): i for i, pk in enumerate(category_ids)}
    config_path.write_text(json.dumps(config))
    Prediction.objects.all().delete()
    ModelVersion.objects.all().delete()
    version = ModelVersion.objects.create(
        number=1, base_model="bench", artifact_path=str(folder), status=ModelVersionStatus.ACTIVE
    )
    ids = list(Product.objects.order_by("id").values_list("id", flat=True)[: args.n])
    titles = dict(Product.objects.filter(id__lte=ids[-1]).values_list("id", "title"))
    print(f"{len(ids):,} products in {args.rounds} rounds, torch threads: {__import__('torch').get_num_threads()}")

    from django.conf import settings
    from transformers import pipeline

    classifier = Classifier(folder, quantize=settings.MLCORE_QUANTIZE)
    classifier.predict([titles[pk] for pk in ids[:256]])  # warm up
    classify = pipeline("text-classification", model=str(folder), device="cpu", top_k=5)
    # Warmed up as the classifier was: a pipeline's first call costs about three later ones.
    for pk in ids[:20]:
        classify(titles[pk])

    job = RescoreJob.objects.create(model_version=version, products_total=len(ids))
    size = 2000
    RescoreChunk.objects.bulk_create(
        RescoreChunk(job=job, first_id=ids[i], last_id=ids[min(i + size, len(ids)) - 1])
        for i in range(0, len(ids), size)
    )
    job.chunks_total = job.chunks.count()
    job.save()
    chunks = list(job.chunks.order_by("first_id").values_list("first_id", "last_id"))

    # The machine is shared: the three paths take turns, round after round, so that a neighbour's load falls on
    # all of them alike instead of on whichever ran while it lasted.
    seconds = {"model": 0.0, "end_to_end": 0.0, "naive": 0.0}
    counted = {"model": 0, "end_to_end": 0, "naive": 0}
    naive_rows = []
    per_round = max(1, len(chunks) // args.rounds)
    for round_number in range(args.rounds):
        mine = chunks[
            round_number * per_round : None if round_number == args.rounds - 1 else (round_number + 1) * per_round
        ]
        if not mine:
            continue
        round_ids = [pk for pk in ids if mine[0][0] <= pk <= mine[-1][1]]
        started = time.perf_counter()
        classifier.predict([titles[pk] for pk in round_ids], top_k=5)
        seconds["model"] += time.perf_counter() - started
        counted["model"] += len(round_ids)

        started = time.perf_counter()
        for first, last in mine:
            rescore_chunk(job_id=job.pk, first_id=first, last_id=last)
        seconds["end_to_end"] += time.perf_counter() - started
        counted["end_to_end"] += len(round_ids)

        naive_ids = round_ids[: max(1, args.naive // args.rounds)]
        rows = {p.product_id: p for p in Prediction.objects.filter(model_version=version, product_id__in=naive_ids)}
        started = time.perf_counter()
        for pk, title in Product.objects.filter(id__in=naive_ids).values_list("id", "title"):
            output = classify(title)
            result = output[0] if isinstance(output[0], list) else output
            rows[pk].confidence = float(result[0]["score"])
        Prediction.objects.bulk_update(list(rows.values()), ["confidence"])
        seconds["naive"] += time.perf_counter() - started
        counted["naive"] += len(naive_ids)
        naive_rows.append(len(naive_ids) / (time.perf_counter() - started))
    rescore_job_run_here(job_id=job.pk)  # nothing left to run: marks the job done, as the last chunk would
    model_only, end_to_end, naive = (counted[key] / seconds[key] for key in ("model", "end_to_end", "naive"))
    print(f"model only (tokenize + infer):   {model_only:8,.0f} titles/s")
    print(f"end to end (read..COPY):         {end_to_end:8,.0f} titles/s  ({end_to_end / model_only:.2f} x model only)")
    print(
        f"naive (pipeline per product):    {naive:8,.0f} titles/s  (end to end is {end_to_end / naive:.1f} x; "
        f"naive by round: {', '.join(f'{rate:,.0f}' for rate in naive_rows)})"
    )

    # Writes, in turns as above. Both are timed to their commit: the foreign-key checks PostgreSQL defers to it are
    # part of the cost. The naive write updates the same columns COPY writes (a new version's scores replace every
    # one of them).
    columns = ["top", "category", "confidence", "margin", "entropy", "backoff_category", "backoff_confidence"]
    write_seconds = {"copy": 0.0, "update": 0.0}
    write_rows = {"copy": 0, "update": 0}
    for round_number in range(3):
        sample = list(
            Prediction.objects.filter(model_version=version).order_by("product_id")[
                round_number * 20_000 : (round_number + 1) * 20_000
            ]
        )
        fresh = [
            {
                "product_id": p.product_id,
                "top": p.top,
                "category_id": p.category_id,
                "confidence": p.confidence,
                "margin": p.margin,
                "entropy": p.entropy,
            }
            for p in sample
        ]
        Prediction.objects.filter(pk__in=[p.pk for p in sample]).delete()
        started = time.perf_counter()
        with transaction.atomic():
            predictions_write(rows=fresh, version_id=version.pk)
        write_seconds["copy"] += time.perf_counter() - started
        write_rows["copy"] += len(fresh)

        sample = list(Prediction.objects.filter(model_version=version).order_by("-product_id")[:1_000])
        for p in sample:
            p.confidence, p.created_at = p.confidence * 0.5, timezone.now()
        started = time.perf_counter()
        with transaction.atomic():
            Prediction.objects.bulk_update(sample, [*columns, "created_at"], batch_size=1000)
        write_seconds["update"] += time.perf_counter() - started
        write_rows["update"] += len(sample)
    copy_rate, update_rate = (write_rows[key] / write_seconds[key] for key in ("copy", "update"))
    print(
        f"writes: COPY {copy_rate:,.0f} rows/s, bulk_update {update_rate:,.0f} rows/s ({copy_rate / update_rate:.0f} x)"
    )


def fast(n: int, classes: int, workers: int) -> None:
    """A fast version re-scores n products from their stored embeddings, chunk by chunk as the worker does; side by
    side, the floor: reading the same chunks' embeddings and nothing else.

    The vectors are synthetic but shaped like a catalog's, stored as a real run stores them (float16, the text's
    hash): nine products in ten lie near one category's centroid (cosine ~0.6, as titles lie near their category's
    labelled products) and one in ten is noise, whose flat scores make the back-off roll up every node (the costly
    case). The head's work depends on that mix, not on what the vectors mean."""
    import random

    import numpy as np
    from django.db import connection

    from catalog.models import Category, Product
    from mlcore.engine.fasthead import FastHead
    from mlcore.engine.text import product_text
    from mlcore.engine.types import ProductText
    from mlcore.models import ModelVersion, ModelVersionStatus, Prediction, ProductEmbedding, RescoreJob, TrainingMethod
    from mlcore.services.embeddings import encoder_key, range_embeddings, text_hash
    from mlcore.services.rescoring import rescore_job_run_here, rescore_job_start
    from mlcore.services.scoring import _zeroshot

    # The job re-scores the whole catalog: every product gets its stored embedding (n only says how many to expect).
    if not Category.objects.exists():
        from django.core.management import call_command

        call_command("load_demo", limit=1, seed_per_category=0, verbosity=0)  # the Shopify taxonomy
    if Product.objects.count() < n:
        from bench.import_products import fill

        print(f"filled the bench catalog to {n:,} products in {fill(n):.0f} s (set-up, not timed below)")
    ids = list(Product.objects.order_by("id").values_list("id", flat=True))
    key = encoder_key()
    leaves = list(Category.objects.filter(has_children=False).values_list("pk", flat=True))
    chosen = sorted(random.Random(0).sample(leaves, min(classes, len(leaves))))
    centroids = np.random.default_rng(1).normal(size=(len(chosen), 384)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    # The mix above is the bench's own: stored again on each run (set-up, not timed).
    started = time.perf_counter()
    ProductEmbedding.objects.all().delete()
    rng = np.random.default_rng(0)
    # Read before the COPY starts: the connection is busy with it until it ends (a query inside would wait on it).
    products = list(Product.objects.order_by("id").values_list("id", "title", "brand", "description"))
    with connection.cursor() as cursor:
        with cursor.connection.cursor().copy(
            "COPY mlcore_productembedding (product_id, encoder, text_hash, vector, updated_at) FROM STDIN"
        ) as copy:
            for first in range(0, len(products), 20_000):
                batch = products[first : first + 20_000]
                vectors = rng.normal(size=(len(batch), 384)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                near = rng.random(len(batch)) < 0.9
                vectors[near] = 0.6 * centroids[rng.integers(0, len(chosen), int(near.sum()))] + 0.8 * vectors[near]
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                for (pk, title, brand, description), vector in zip(batch, vectors, strict=True):
                    text = product_text(ProductText(title=title, brand=brand, description=description))
                    copy.write_row((pk, key, text_hash(text), vector.astype(np.float16).tobytes(), "now"))
        cursor.execute("ANALYZE mlcore_productembedding")
    print(f"stored {len(ids):,} embeddings in {time.perf_counter() - started:.0f} s (set-up, not timed below)")
    folder = REPO / "var" / "bench-models" / f"fast-{len(chosen)}"
    FastHead(
        labels=[str(pk) for pk in chosen],
        centroids=centroids,
        counts=np.full(len(chosen), 5),
        prior_weight=0.5,
        temperature=1.0,
    ).save(folder)
    Prediction.objects.all().delete()
    RescoreJob.objects.all().delete()
    ModelVersion.objects.all().delete()
    version = ModelVersion.objects.create(
        number=1,
        base_model="bench",
        method=TrainingMethod.FAST,
        artifact_path=str(folder),
        status=ModelVersionStatus.ACTIVE,
    )
    started = time.perf_counter()
    _zeroshot()  # the taxonomy's category embeddings: once per taxonomy and encoder, cached on disk
    print(f"zero-shot scorer ready in {time.perf_counter() - started:.0f} s (once per taxonomy; cached on disk)")
    import gc

    gc.collect()
    gc.freeze()  # as config/wsgi.py does: the loaded app's objects are never scanned again
    job = rescore_job_start(version_id=version.pk, enqueue=False)
    chunks = list(job.chunks.order_by("first_id").values_list("first_id", "last_id"))
    started = time.perf_counter()
    for first, last in chunks:
        range_embeddings(first, last)  # what each chunk reads before it scores
    floor = time.perf_counter() - started
    for processes in sorted({1, workers}):
        Prediction.objects.filter(model_version=version).delete()
        RescoreJob.objects.all().delete()
        job = rescore_job_start(version_id=version.pk, enqueue=False)
        started = time.perf_counter()
        if processes == 1:
            rescore_job_run_here(job_id=job.pk)
        else:
            _run_in_processes(job.pk, processes)
        seconds = time.perf_counter() - started
        job.refresh_from_db()
        done = Prediction.objects.filter(model_version=version).count()
        print(
            f"fast head, {len(chosen):,} categories, {processes} worker process(es): {done:,} products re-scored in "
            f"{seconds:.1f} s ({done / seconds:,.0f} products/s; 1M would take {1e6 / (done / seconds):.0f} s, "
            f"target <= 60), {job.chunks_total} chunks, job {job.status}; reading the same embeddings alone, one "
            f"process: {floor:.1f} s ({seconds / floor:.1f} x)"
        )
    writes(version.pk, chunks[:5])


# Tables shaped like mlcore_prediction (LIKE ... INCLUDING ALL: its columns and indexes) with the constraints each
# variant names: what PostgreSQL's side of a chunk's write costs, and what each constraint and index adds to it.
WRITE_VARIANTS = {
    "as shipped (the product's constraint, 4 indexes)": (["product_id"], []),
    "with the version's constraint too (until this stop)": (["product_id", "model_version_id"], []),
    "with the version's and the category constraints and indexes (until the last stop)": (
        ["product_id", "model_version_id", "category_id", "backoff_category_id"],
        ["category_id", "backoff_category_id"],
    ),
    "no constraint, 4 indexes": ([], []),
    "no constraint, only the key and the unique (product, version)": ([], None),
}
REFERENCES = {
    "product_id": "catalog_product",
    "model_version_id": "mlcore_modelversion",
    "category_id": "catalog_category",
    "backoff_category_id": "catalog_category",
}


def writes(version_id: int, chunks: list[tuple[int, int]], rounds: int = 4) -> None:
    """The same chunks' predictions copied into each variant in turn, each timed to its commit (where the deferred
    foreign-key checks run), the order reversed every round."""
    import numpy as np
    from django.db import connection, transaction
    from django.utils import timezone

    from mlcore.services.embeddings import range_embeddings
    from mlcore.services.scoring import _copy_blocks, score_embedded

    tables = {name: f"bench_write_{i}" for i, name in enumerate(WRITE_VARIANTS)}
    with connection.cursor() as cursor:
        for name, (constrained, indexed) in WRITE_VARIANTS.items():
            table = tables[name]
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TABLE {table} (LIKE mlcore_prediction INCLUDING ALL)")
            for column in constrained:
                cursor.execute(
                    f"ALTER TABLE {table} ADD FOREIGN KEY ({column}) REFERENCES {REFERENCES[column]}(id) "
                    "DEFERRABLE INITIALLY DEFERRED"
                )
            for column in indexed or []:
                cursor.execute(f"CREATE INDEX ON {table} ({column})")
            if indexed is None:
                cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
                for index, definition in cursor.fetchall():
                    if "pkey" not in index and "(product_id, model_version_id)" not in definition:
                        cursor.execute(f"DROP INDEX {index}")
    scores = [
        score_embedded(version_id=version_id, ids=ids, embeddings=vectors)
        for ids, vectors in (range_embeddings(first, last) for first, last in chunks)
    ]
    seconds: dict[str, list[float]] = {name: [] for name in WRITE_VARIANTS}
    columns = "product_id, model_version_id, top, category_id, confidence, margin, entropy, backoff_category_id, "
    columns += "backoff_confidence, created_at"
    for round_ in range(rounds):
        for chunk in scores:
            for name in list(WRITE_VARIANTS)[:: -1 if round_ % 2 else 1]:
                started = time.perf_counter()
                with (
                    transaction.atomic(),
                    connection.cursor() as cursor,
                    cursor.connection.cursor().copy(f"COPY {tables[name]} ({columns}) FROM STDIN") as copy,
                ):
                    for block in _copy_blocks(chunk, version_id, timezone.now()):
                        copy.write(block)
                seconds[name].append((time.perf_counter() - started) / len(chunk) * 10_000)
        with connection.cursor() as cursor:
            for table in tables.values():
                cursor.execute(f"TRUNCATE {table}")
    with connection.cursor() as cursor:
        for table in tables.values():
            cursor.execute(f"DROP TABLE {table}")
    shipped = float(np.median(seconds[next(iter(WRITE_VARIANTS))]))
    print("PostgreSQL's side of the write alone, per 10,000 predictions (COPY to commit), side by side:")
    for name, values in seconds.items():
        median = float(np.median(values))
        print(f"  {name}: {median:.3f} s ({median / shipped:.2f}x; {median * 100:.0f} s per 1M)")


def _run_in_processes(job_id: int, processes: int) -> None:
    """The job's chunks shared by `processes` worker processes, each taking the next chunk as it finishes one, as
    Celery's prefork pool (--concurrency N) or N worker hosts on the scoring queue do."""
    import multiprocessing

    from django.db import connections

    from mlcore.models import RescoreChunk

    chunks = list(RescoreChunk.objects.filter(job_id=job_id).order_by("first_id").values_list("first_id", "last_id"))
    connections.close_all()  # each child opens its own; a connection must never cross a fork
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        list(pool.imap_unordered(_chunk_in_child, [(job_id, first, last) for first, last in chunks]))


def _chunk_in_child(arguments: tuple[int, int, int]) -> None:
    from mlcore.services.rescoring import rescore_chunk

    job_id, first, last = arguments
    rescore_chunk(job_id=job_id, first_id=first, last_id=last)


if __name__ == "__main__":
    main()
