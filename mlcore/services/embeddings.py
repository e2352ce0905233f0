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


def stored_embeddings(ids: list[int]) -> tuple[list[int], Matrix]:
    """The stored embeddings of these products as they are (no encoder pass): the ids that have one, and them."""
    key = encoder_key()
    found, vectors = [], []
    for pk, vector in ProductEmbedding.objects.filter(product_id__in=ids, encoder=key).values_list(
        "product_id", "vector"
    ):
        found.append(pk)
        vectors.append(np.frombuffer(bytes(vector), dtype=np.float16))
    return found, (np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), dtype=np.float32))
