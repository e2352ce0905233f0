"""Scoring products: the cached inference models (a version's classifier, the zero-shot scorer) and the writing of
their predictions. Every product has suggestions: products created, edited or imported are scored on their own, a few
hundred at a time, by the serving version (zero-shot before there is one), instead of waiting for the next full
re-score. The backlog table is the durable part: a debounced task drains it after each change, beat drains it every
minute, and a version's switch tops it up with the products its re-score did not reach (created while it ran)."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from catalog.models import Category, Product
from core.models import UNFINISHED
from mlcore.models import (
    ModelVersion,
    Prediction,
    RescoreJob,
    ScoringBacklog,
)
from mlcore.selectors import serving_version
from mlcore.services.datasets import category_hierarchy
from mlcore.services.embeddings import base_encoder, base_model_path, encoder, product_embeddings, range_embeddings

logger = logging.getLogger(__name__)


SCHEDULED_KEY = "mlcore:scoring-backlog-scheduled"


@dataclass
class Scores:
    """Predictions for a batch of products, column by column (as the engine returns them and the COPY writes them):
    a re-scoring chunk of 10,000 products never becomes 10,000 dicts unless a caller asks for rows()."""

    product_ids: list[int]
    category_ids: npt.NDArray[np.int64]  # (n, k), best first
    probabilities: npt.NDArray[np.float32]  # (n, k)
    margins: npt.NDArray[np.float32]
    entropies: npt.NDArray[np.float32]
    backoff: list[tuple[int | None, float | None]]  # the deepest node above the threshold, or (None, None)

    def __len__(self) -> int:
        return len(self.product_ids)

    def columns(self) -> Iterator[tuple[int, list[list[Any]], int, float, float, float, int | None, float | None]]:
        """(product id, top as [[category id, probability], ...], category id, confidence, margin, entropy, back-off
        category id, back-off confidence) per product; arrays become Python numbers in bulk (tolist)."""
        top_ids = self.category_ids.tolist()
        top_probabilities = np.round(self.probabilities.astype(np.float64), 5).tolist()
        confidences = self.probabilities[:, 0].astype(np.float64).tolist() if len(self) else []
        margins = np.asarray(self.margins, dtype=np.float64).tolist()
        entropies = np.asarray(self.entropies, dtype=np.float64).tolist()
        for pk, cats, probs, confidence, margin, entropy, (back_id, back_confidence) in zip(
            self.product_ids, top_ids, top_probabilities, confidences, margins, entropies, self.backoff, strict=True
        ):
            yield (
                pk,
                [list(pair) for pair in zip(cats, probs, strict=True)],
                cats[0],
                confidence,
                margin,
                entropy,
                back_id,
                back_confidence,
            )

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "product_id": pk,
                "top": top,
                "category_id": category_id,
                "confidence": confidence,
                "margin": margin,
                "entropy": entropy,
                "backoff_category_id": back_id,
                "backoff_confidence": back_confidence,
            }
            for pk, top, category_id, confidence, margin, entropy, back_id, back_confidence in self.columns()
        ]


def score_products(*, version_id: int | None, products: list[tuple[int, str, str, str]]) -> list[dict[str, Any]]:
    """Top-k categories for (id, title, brand, description) rows, from a version's classifier or zero-shot."""
    return _score_texts(version_id=version_id, products=products).rows()


def _score_texts(*, version_id: int | None, products: list[tuple[int, str, str, str]]) -> Scores:
    from mlcore.engine.hierarchy import margin_and_entropy
    from mlcore.engine.text import product_text
    from mlcore.engine.types import ProductText

    ids = [pk for pk, *_ in products]
    if not products:
        return _no_scores()
    texts = [product_text(ProductText(title=t, brand=b, description=d)) for _, t, b, d in products]
    k = settings.MLCORE_TOP_K
    version = ModelVersion.objects.only("artifact_path", "method").get(pk=version_id) if version_id else None
    if version is None:
        scorer, candidates, pks = _zeroshot()
        # Embedded once, and kept: the fast head and the evidence neighbours read the same vectors later.
        embeddings = product_embeddings(ids, texts)
        nodes, probabilities = scorer.top_k_embedded(embeddings, candidates, k=k)
        # The same uncertainty measures the classifier reports, over the top-k candidates' softmax.
        margins, entropies = margin_and_entropy(probabilities)
        category_ids = np.asarray(pks, dtype=np.int64)[nodes]
        return Scores(ids, category_ids, probabilities, margins, entropies, [(None, None)] * len(ids))
    if version.is_fast:
        return score_embedded(version_id=version.pk, ids=ids, embeddings=product_embeddings(ids, texts))
    classifier = _classifier(version.artifact_path)
    predictions = classifier.predict(texts, top_k=k, keep_probabilities=True)
    backoff = _backoff(classifier.labels, predictions.probabilities, predictions.top_indices)
    return _scores_of(ids, classifier.labels, predictions, backoff)


def _scores_of(
    ids: list[int], labels: list[str], predictions: Any, backoff: list[tuple[int | None, float | None]]
) -> Scores:
    """A model's predictions (class indices) as Scores (category ids)."""
    label_ids = np.asarray([int(label) for label in labels], dtype=np.int64)
    return Scores(
        ids,
        label_ids[predictions.top_indices],
        predictions.top_probabilities,
        predictions.margin,
        predictions.entropy,
        backoff,
    )


def _no_scores() -> Scores:
    empty = np.zeros(0, dtype=np.float32)
    return Scores([], np.zeros((0, 1), np.int64), np.zeros((0, 1), np.float32), empty, empty, [])


def score_product_range(*, version_id: int | None, first_id: int, last_id: int) -> Scores:
    """Scores of every product with an id in [first_id, last_id] (a re-scoring chunk). A fast version reads the
    stored embeddings by range and never the texts it does not need (range_embeddings)."""
    version = ModelVersion.objects.only("method").get(pk=version_id) if version_id else None
    if version is not None and version.is_fast:
        ids, embeddings = range_embeddings(first_id, last_id)
        return score_embedded(version_id=version.pk, ids=ids, embeddings=embeddings)
    products = list(
        Product.objects.filter(id__gte=first_id, id__lte=last_id).values_list("id", "title", "brand", "description")
    )
    return _score_texts(version_id=version_id, products=products)


def score_embedded(*, version_id: int, ids: list[int], embeddings: Any) -> Scores:
    """A fast version's top-k for products already embedded: centroids + the zero-shot prior, no encoder pass."""
    if not ids:
        return _no_scores()
    version = ModelVersion.objects.only("artifact_path", "method").get(pk=version_id)
    head = _fast_head(version.artifact_path)
    # Read once and handed down: asking whether the tree changed is a query (~10 ms), once per chunk is enough.
    tree = category_hierarchy()
    hierarchy, pks = tree
    prior = _prior_matrix(head.labels, tree) if head.prior_weight else None
    cached = _CATALOG_SCORER.get("scorer")
    if cached is None or cached[0] is not head or cached[1] is not prior or cached[2] is not hierarchy:
        from mlcore.engine.fasthead import CatalogScorer

        cached = (head, prior, hierarchy, CatalogScorer.build(head, _rollup(head.labels, tree), prior))
        _CATALOG_SCORER["scorer"] = cached
    predictions, chosen, confidence = cached[3].predict(
        embeddings, top_k=settings.MLCORE_TOP_K, threshold=settings.MLCORE_BACKOFF_THRESHOLD
    )
    return _scores_of(ids, head.labels, predictions, _backoff_pairs(chosen, confidence, pks))


_CATALOG_SCORER: dict[str, Any] = {}


def _backoff(labels: list[str], probabilities: Any, top: Any = None) -> list[tuple[int | None, float | None]]:
    """Roll the classes' probabilities up the tree and keep the deepest node above the threshold."""
    chosen, confidence = _rollup(labels).backoff(probabilities, threshold=settings.MLCORE_BACKOFF_THRESHOLD, top=top)
    return _backoff_pairs(chosen, confidence, category_hierarchy()[1])


def _backoff_pairs(chosen: Any, confidence: Any, pks: list[int]) -> list[tuple[int | None, float | None]]:
    """(category id, probability) per row from the roll-up's node indices (-1: no node reached the threshold), pks
    the tree's by node index."""
    return [
        (pks[c], p) if c >= 0 else (None, None)
        for c, p in zip(chosen.tolist(), confidence.astype(np.float64).tolist(), strict=True)
    ]


def _rollup(labels: list[str], tree: tuple[Any, list[int]] | None = None) -> Any:
    """The tree's roll-up for these classes, built once per model and tree (a fifth of a fast chunk when it was
    built for each). tree: category_hierarchy(), where the caller has it already."""
    from mlcore.engine.hierarchy import Rollup

    hierarchy, _ = tree or category_hierarchy()
    key = tuple(labels)
    cached = _ROLLUP_CACHE.get("rollup")
    if cached is None or cached[0] is not hierarchy or cached[1] != key:
        cached = (hierarchy, key, Rollup.build(hierarchy, labels))
        _ROLLUP_CACHE["rollup"] = cached
    return cached[2]


_ROLLUP_CACHE: dict[str, Any] = {}


@lru_cache(maxsize=2)
def _classifier(artifact_path: str) -> Any:
    """One loaded model per worker process and version (a worker serves many chunks)."""
    from mlcore.engine.prediction import Classifier

    return Classifier(
        artifact_path,
        device=settings.MLCORE_DEVICE,
        max_length=settings.MLCORE_MAX_LENGTH,
        quantize=settings.MLCORE_QUANTIZE,
    )


@lru_cache(maxsize=2)
def _fast_head(artifact_path: str) -> Any:
    from mlcore.engine.fasthead import FastHead

    return FastHead.load(artifact_path)


def zeroshot_prior(labels: list[str], embeddings: Any) -> Any:
    """Zero-shot scores of the products (embedded) for these classes (category ids as strings), column by column:
    what the fast head fuses with its centroids. A class whose category is gone from the tree scores 0."""
    return np.asarray(embeddings @ _prior_matrix(labels).T, dtype=np.float32)


def _prior_matrix(labels: list[str], tree: tuple[Any, list[int]] | None = None) -> Any:
    """One vector per class (ZeroShotScorer.linear), kept while the classes and the taxonomy stay: a chunk's prior
    is then one matrix product (the same object is returned while it holds, so callers may cache on it). tree:
    category_hierarchy(), where the caller has it already."""
    scorer, pks = _zeroshot_scorer(tree)
    key = (id(scorer), tuple(labels))
    if _PRIOR_CACHE.get("key") != key:
        index = {pk: i for i, pk in enumerate(pks)}
        present = [i for i, label in enumerate(labels) if int(label) in index]
        matrix = np.zeros((len(labels), scorer.path_embeddings.shape[1]), dtype=np.float32)
        if present:
            matrix[present] = scorer.linear([index[int(labels[i])] for i in present])
        _PRIOR_CACHE.update(key=key, matrix=matrix)
    return _PRIOR_CACHE["matrix"]


_PRIOR_CACHE: dict[str, Any] = {}


def _zeroshot() -> tuple[Any, list[int], list[int]]:
    """The zero-shot scorer, the node indices it may suggest (zeroshot_candidates) and the pks by node index."""
    scorer, pks = _zeroshot_scorer()
    index = {pk: i for i, pk in enumerate(pks)}
    return scorer, [index[pk] for pk in zeroshot_candidates() if pk in index], pks


def _zeroshot_scorer(tree: tuple[Any, list[int]] | None = None) -> tuple[Any, list[int]]:
    """The zero-shot scorer over the whole tree, per process until the taxonomy changes, and the pks by node index
    (without the candidates: a fast head's prior scores its own classes, and asking which categories the catalog
    uses reads every product)."""
    from mlcore.engine.zeroshot import CategoryTexts, ZeroShotScorer

    hierarchy, pks = tree or category_hierarchy()
    cached = _ZEROSHOT_CACHE.get("scorer")
    # category_hierarchy() hands out a new tree whenever a category is added or changes (names included): the
    # scorer's category texts are stale exactly then.
    if cached is None or cached[0] is not hierarchy:
        rows = {pk: (name, path) for pk, name, path in Category.objects.values_list("pk", "name_en", "full_path_en")}
        texts = CategoryTexts(
            hierarchy=hierarchy,
            names=[rows[pk][0] for pk in pks],
            paths=[rows[pk][1] for pk in pks],
        )
        model = base_model_path()
        scorer = ZeroShotScorer(
            encoder(), texts, cache_dir=settings.MLCORE_ARTIFACT_DIR / "zeroshot-cache", model_name=model
        )
        cached = (hierarchy, scorer)
        _ZEROSHOT_CACHE["scorer"] = cached
    return cached[1], pks


_ZEROSHOT_CACHE: dict[str, Any] = {}


def scoring_caches_clear() -> None:
    """Drop this process's cached inference models and give their GPU memory back (a training run needs it)."""
    _classifier.cache_clear()
    _fast_head.cache_clear()
    _PRIOR_CACHE.clear()
    _ROLLUP_CACHE.clear()
    _CATALOG_SCORER.clear()
    base_encoder.cache_clear()
    _ZEROSHOT_CACHE.clear()
    from mlcore.engine.device import release_memory

    release_memory()


def zeroshot_candidates() -> list[int]:
    """Categories zero-shot may suggest: those the catalog already uses (when it uses at least two), else every
    active leaf of the taxonomy (MLCORE_ZEROSHOT_CANDIDATES=leaves forces the latter)."""
    if settings.MLCORE_ZEROSHOT_CANDIDATES == "used":
        used = sorted(set(Product.objects.exclude(category=None).values_list("category_id", flat=True).distinct()))
        if len(used) >= 2:
            return used
    return list(Category.objects.filter(has_children=False, is_active=True).values_list("pk", flat=True))


_COPY_PREDICTIONS = (
    "COPY mlcore_prediction (product_id, model_version_id, top, category_id, confidence, margin, entropy, "
    "backoff_category_id, backoff_confidence, created_at) FROM STDIN"
)


def _copy_blocks(scores: Scores, version_id: int | None, now: datetime, *, rows: int = 1000) -> Iterator[str]:
    """A chunk's predictions as COPY text for mlcore_prediction, `rows` rows a block, formatted column by column
    with one %-format per row: a quarter of the time psycopg's write_row takes to adapt ten values a row, though
    the write as a whole gains only ~4 % (PostgreSQL's parsing, on the other core, is what a chunk waits for).
    Blocks, not one string: PostgreSQL parses a block while the next is formatted, which a single string formatted
    first gives up (it was slower than write_row's stream). Only numbers, JSON of numbers and a timestamp: nothing
    that COPY's text format must escape."""
    n, k = scores.category_ids.shape
    version = r"\N" if version_id is None else str(int(version_id))
    # The top-k as JSON: category ids, and probabilities to 5 decimals (as the rows' path rounds them).
    line = (
        "%d\t"
        + version
        + "\t["
        + ", ".join(["[%d, %.5f]"] * k)
        + "]\t%d\t%r\t%r\t%r\t%s\t%s\t"
        + now.isoformat()
        + "\n"
    )
    for first in range(0, n, rows):
        block = slice(first, first + rows)
        interleaved = np.empty((len(scores.product_ids[block]), 2 * k), dtype=object)
        interleaved[:, 0::2] = scores.category_ids[block].tolist()
        interleaved[:, 1::2] = scores.probabilities[block].astype(np.float64).tolist()
        yield "".join(
            [
                line % (pk, *top, top[0], confidence, margin, entropy, back_id, back_confidence)
                for pk, top, confidence, margin, entropy, back_id, back_confidence in zip(
                    scores.product_ids[block],
                    interleaved.tolist(),
                    scores.probabilities[block, 0].astype(np.float64).tolist(),
                    np.asarray(scores.margins[block], dtype=np.float64).tolist(),
                    np.asarray(scores.entropies[block], dtype=np.float64).tolist(),
                    [r"\N" if c is None else str(c) for c, _ in scores.backoff[block]],
                    [r"\N" if p is None else repr(p) for _, p in scores.backoff[block]],
                    strict=True,
                )
            ]
        )


def predictions_write(*, rows: Scores | list[dict[str, Any]], version_id: int | None) -> None:
    """PostgreSQL: one COPY (bench/rescore.py: ~55x bulk_update of the same columns, both timed to their commit,
    where PostgreSQL runs the deferred foreign-key checks); Scores (a re-scoring chunk) formatted column by column
    (_copy_blocks), never turned into dicts, other rows by psycopg's write_row. Elsewhere: bulk_create."""
    if not len(rows):
        return
    if connection.vendor == "postgresql" and isinstance(rows, Scores):
        with connection.cursor() as cursor, cursor.connection.cursor().copy(_COPY_PREDICTIONS) as copy:
            for block in _copy_blocks(rows, version_id, timezone.now()):
                copy.write(block)
        return
    records = (
        rows.columns()
        if isinstance(rows, Scores)
        else (
            (
                row["product_id"],
                row["top"],
                row["category_id"],
                row["confidence"],
                row["margin"],
                row["entropy"],
                row.get("backoff_category_id"),
                row.get("backoff_confidence"),
            )
            for row in rows
        )
    )
    if connection.vendor == "postgresql":
        now = timezone.now()
        with (
            connection.cursor() as cursor,
            cursor.connection.cursor().copy(_COPY_PREDICTIONS) as copy,
        ):
            for pk, top, category_id, confidence, margin, entropy, back_id, back_confidence in records:
                # The top-k as JSON by hand: ids and finite floats, whose repr is JSON (a third of json.dumps' time).
                top_json = "[" + ", ".join(f"[{c}, {p!r}]" for c, p in top) + "]"
                copy.write_row(
                    (pk, version_id, top_json, category_id, confidence, margin, entropy, back_id, back_confidence, now)
                )
        return
    Prediction.objects.bulk_create(
        [
            Prediction(
                model_version_id=version_id,
                product_id=pk,
                top=top,
                category_id=category_id,
                confidence=confidence,
                margin=margin,
                entropy=entropy,
                backoff_category_id=back_id,
                backoff_confidence=back_confidence,
            )
            for pk, top, category_id, confidence, margin, entropy, back_id, back_confidence in records
        ],
        batch_size=500,
    )


def scoring_backlog_add(*, product_ids: Iterable[int]) -> int:
    """Queue products for scoring (in the caller's transaction) and, once it commits, a debounced drain."""
    now = timezone.now()
    ids = sorted(set(product_ids))
    for start in range(0, len(ids), 2000):
        ScoringBacklog.objects.bulk_create(
            [ScoringBacklog(product_id=pk, queued_at=now) for pk in ids[start : start + 2000]],
            update_conflicts=True,
            unique_fields=["product"],
            update_fields=["queued_at"],
        )
    if ids:
        transaction.on_commit(scoring_backlog_schedule)
    return len(ids)


def scoring_backlog_schedule() -> None:
    """One drain per debounce window: a burst of edits (an import's chunks, an annotator's session) is scored
    together. On the fast queue (as beat's minute drain), which scoring workers take in turn with a long re-score's
    chunks: a product created while a whole catalog re-scores has its suggestions in seconds, not after the job. Best
    effort: with the broker down, beat's drain picks the backlog up."""
    if not cache.add(SCHEDULED_KEY, 1, timeout=settings.MLCORE_SCORE_DEBOUNCE_SECONDS):
        return
    from mlcore.tasks import scoring_backlog_task

    try:
        scoring_backlog_task.apply_async(countdown=settings.MLCORE_SCORE_DEBOUNCE_SECONDS)
    except Exception:  # the broker is down: the backlog waits for beat, nothing is lost
        logger.warning("could not queue the scoring backlog's drain; beat will drain it", exc_info=True)


def scoring_backlog_drain(*, batch: int | None = None, budget_seconds: float | None = None) -> int:
    """Score the backlog, oldest first, `batch` products a transaction, until it is empty or the time budget is
    spent; then it queues its sequel, so that a large backlog is scored in slices that take turns with the rest of
    the fast queue (a fast head waits seconds behind a drain, not minutes). Rows another drain holds are skipped,
    never scored twice at once. Returns how many products were scored."""
    batch = batch or settings.MLCORE_SCORE_BATCH
    budget = budget_seconds if budget_seconds is not None else settings.MLCORE_SCORE_BUDGET_SECONDS
    started = time.monotonic()
    scored = 0
    emptied = False
    while time.monotonic() - started < budget:
        with transaction.atomic():
            version = serving_version()
            version_id = version.pk if version is not None else None
            waiting = ScoringBacklog.objects.select_for_update(skip_locked=True)
            covering = (
                RescoreJob.objects.filter(model_version_id=version_id, status__in=UNFINISHED)
                .order_by("created_at")
                .first()
            )
            if covering is not None:
                # A full re-score for this version is under way: it scores what was queued before it started (and
                # clears those rows when it completes); only what changed since is scored here.
                waiting = waiting.filter(queued_at__gt=covering.created_at)
            rows = list(waiting.order_by("queued_at").values_list("product_id", "queued_at")[:batch])
            if not rows:
                emptied = True
                break
            products = list(
                Product.objects.filter(pk__in=[pk for pk, _ in rows])
                .order_by("pk")
                .values_list("pk", "title", "brand", "description")
            )
            predictions = score_products(version_id=version_id, products=products)
            Prediction.objects.filter(model_version_id=version_id, product_id__in=[p[0] for p in products]).delete()
            predictions_write(rows=predictions, version_id=version_id)
            # Only as read: a product changed again meanwhile (queued_at moved on) stays for the next drain. One
            # DELETE per time the rows were queued, not per product: an import's chunk or a burst of edits shares
            # one time, so a batch of 500 is a statement or a few rather than 500 round trips.
            read_at: dict[datetime, list[int]] = defaultdict(list)
            for pk, queued_at in rows:
                read_at[queued_at].append(pk)
            for queued_at, pks in read_at.items():
                ScoringBacklog.objects.filter(queued_at=queued_at, product_id__in=pks).delete()
            scored += len(products)
    if scored:
        logger.info("scored %s product(s) from the backlog", scored)
    if not emptied:
        # The rest takes its turn again after the debounce, rather than at beat's next minute.
        cache.delete(SCHEDULED_KEY)
        scoring_backlog_schedule()
    return scored


def scoring_backlog_top_up(*, version_id: int | None, covered_until: datetime) -> int:
    """When a full re-score completes (in the transaction that makes its version serve): forget what it covered
    (queued before it started) and queue the products that have no prediction of the version (created while it ran,
    after their id range was cut)."""
    ScoringBacklog.objects.filter(queued_at__lte=covered_until).delete()
    missing = Product.objects.filter(
        ~Exists(Prediction.objects.filter(product_id=OuterRef("pk"), model_version_id=version_id))
    ).values_list("pk", flat=True)
    return scoring_backlog_add(product_ids=list(missing))
