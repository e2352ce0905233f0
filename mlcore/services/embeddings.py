"""Stored product embeddings: each product's text as the base encoder embeds it, kept in float16 so that the fast
head fits and re-scores the catalog without an encoder pass, and a suggestion finds its nearest verified products.

Written as a side effect of scoring (zero-shot and fast versions embed anyway); a product whose text changed (its
hash differs) or that was embedded by another encoder is embedded again the next time it is asked for.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from django.conf import settings

from mlcore.models import ProductEmbedding

Matrix = npt.NDArray[np.float32]


def base_model_path() -> str:
    if settings.MLCORE_BASE_MODEL:
        return str(settings.MLCORE_BASE_MODEL)
    from mlcore.engine.artifacts import default_base_model

    return default_base_model()


def encoder_key() -> str:
    """Which encoder wrote an embedding: another base model or token budget makes every stored one stale."""
    return hashlib.sha256(f"{base_model_path()}|{settings.MLCORE_MAX_LENGTH}".encode()).hexdigest()[:16]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def base_encoder(path: str, max_length: int, device: str) -> Any:
    """One base encoder per worker process (zero-shot and the embeddings share it)."""
    from mlcore.engine.zeroshot import Encoder

    return Encoder(path, device=device, max_length=max_length)


def encoder() -> Any:
    return base_encoder(base_model_path(), settings.MLCORE_MAX_LENGTH, settings.MLCORE_DEVICE)


def product_embeddings(ids: list[int], texts: list[str]) -> Matrix:
    """(len(ids), dim) embeddings of the products' texts, in order: stored ones read, the others (new, edited, or
    from another encoder) embedded now and stored."""
    key = encoder_key()
    hashes = [text_hash(text) for text in texts]
    stored: dict[int, tuple[str, bytes]] = {
        pk: (digest, bytes(vector))
        for pk, digest, vector in ProductEmbedding.objects.filter(product_id__in=ids, encoder=key).values_list(
            "product_id", "text_hash", "vector"
        )
    }
    missing = [i for i, (pk, digest) in enumerate(zip(ids, hashes, strict=True)) if stored.get(pk, ("",))[0] != digest]
    fresh: Matrix | None = None
    if missing:
        fresh = encoder().embed([texts[i] for i in missing])
        rows = [
            ProductEmbedding(
                product_id=ids[i], encoder=key, text_hash=hashes[i], vector=fresh[j].astype(np.float16).tobytes()
            )
            for j, i in enumerate(missing)
        ]
        ProductEmbedding.objects.bulk_create(
            rows,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["product"],
            update_fields=["encoder", "text_hash", "vector", "updated_at"],
        )
    dim = fresh.shape[1] if fresh is not None else (len(next(iter(stored.values()))[1]) // 2 if stored else 0)
    out = np.zeros((len(ids), dim), dtype=np.float32)
    for i, pk in enumerate(ids):
        if pk in stored and stored[pk][0] == hashes[i]:
            out[i] = np.frombuffer(stored[pk][1], dtype=np.float16)
    if fresh is not None:
        out[missing] = fresh
    return out


def range_embeddings(first_id: int, last_id: int) -> tuple[list[int], Matrix]:
    """Every product with an id in [first_id, last_id], in id order, and its embedding: one query reads the stored
    ones written since the product last changed (updated_at: a re-score of a million products cannot afford to read
    and hash every text); the rest (new, edited, another encoder) go through product_embeddings(), which checks the
    text's hash and embeds what is stale."""
    from django.db import connection

    from catalog.models import Product

    embedding_table, product_table = ProductEmbedding._meta.db_table, Product._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.id, e.vector FROM {product_table} p LEFT JOIN {embedding_table} e ON e.product_id = p.id "
            "AND e.encoder = %s AND e.updated_at >= p.updated_at WHERE p.id BETWEEN %s AND %s ORDER BY p.id",
            [encoder_key(), first_id, last_id],
        )
        rows = cursor.fetchall()
    ids = [pk for pk, _ in rows]
    fresh = [i for i, (_, vector) in enumerate(rows) if vector is not None]
    stale = [i for i, (_, vector) in enumerate(rows) if vector is None]
    dim = len(rows[fresh[0]][1]) // 2 if fresh else 0
    stale_vectors: Matrix | None = None
    if stale:
        from django.utils import timezone

        from mlcore.engine.text import product_text
        from mlcore.engine.types import ProductText

        read_at = timezone.now()
        texts = {
            pk: product_text(ProductText(title=title, brand=brand, description=description))
            for pk, title, brand, description in Product.objects.filter(pk__in=[ids[i] for i in stale]).values_list(
                "pk", "title", "brand", "description"
            )
        }
        present = [i for i in stale if ids[i] in texts]  # deleted since the first read: left out
        stale_vectors = product_embeddings([ids[i] for i in present], [texts[ids[i]] for i in present])
        # Their vectors now match the texts as read: dated then, the next re-score trusts them without reading the
        # texts again (a product whose category changed after it was embedded would otherwise be hashed every time),
        # while an edit after the read stays newer than its embedding.
        ProductEmbedding.objects.filter(product_id__in=[ids[i] for i in present], encoder=encoder_key()).update(
            updated_at=read_at
        )
        dim = dim or stale_vectors.shape[1]
        stale = present
    keep = sorted(fresh + stale)
    out = np.zeros((len(rows), dim), dtype=np.float32)
    if fresh:
        out[fresh] = np.frombuffer(b"".join(rows[i][1] for i in fresh), dtype=np.float16).reshape(len(fresh), dim)
    if stale_vectors is not None and stale:
        out[stale] = stale_vectors
    return [ids[i] for i in keep], out[keep]
