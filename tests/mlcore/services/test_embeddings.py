from __future__ import annotations

import numpy as np

from catalog.models import Product
from mlcore.models import ProductEmbedding
from mlcore.services.embeddings import product_embeddings


def _count_encoder_passes(monkeypatch) -> list[list[str]]:
    """Each batch the encoder is asked to embed from now on."""
    from mlcore.services import embeddings

    calls: list[list[str]] = []
    real = embeddings.encoder

    def counting():
        encoder = real()
        original = encoder.embed

        def embed(batch, **kwargs):
            calls.append(list(batch))
            return original(batch, **kwargs)

        encoder.embed = embed
        return encoder

    monkeypatch.setattr(embeddings, "encoder", counting)
    return calls


def test_embeddings_are_stored_once_and_again_when_the_text_changes(ml_settings, labelled_catalog, monkeypatch):

    products = list(Product.objects.order_by("pk").values_list("pk", "title")[:4])
    ids, texts = [pk for pk, _ in products], [title for _, title in products]
    first = product_embeddings(ids, texts)
    assert first.shape[0] == 4
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-2)
    assert ProductEmbedding.objects.count() == 4
    calls = _count_encoder_passes(monkeypatch)
    again = product_embeddings(ids, texts)
    assert calls == []  # all four read back, no encoder pass
    assert np.allclose(again, first, atol=1e-3)  # float16 on disk
    texts[1] = texts[1] + " stainless"
    product_embeddings(ids, texts)
    assert calls == [[texts[1]]]  # only the edited text is embedded again


def test_a_range_read_trusts_fresh_embeddings_and_embeds_what_changed_since(ml_settings, labelled_catalog, monkeypatch):
    """A fast re-score reads a chunk's stored embeddings by id range without reading or hashing the texts; a product
    edited after its embedding was written is read and embedded again, never scored from its old text."""
    from catalog.services.products import product_update
    from mlcore.engine.text import product_text
    from mlcore.engine.types import ProductText
    from mlcore.services.embeddings import range_embeddings

    rows = list(Product.objects.order_by("pk").values_list("pk", "title", "brand", "description"))
    texts = [product_text(ProductText(title=t, brand=b, description=d)) for _, t, b, d in rows]
    product_embeddings([pk for pk, *_ in rows], texts)
    first, last = rows[0][0], rows[-1][0]
    ids, stored = range_embeddings(first, last)
    assert ids == [pk for pk, *_ in rows]
    calls = _count_encoder_passes(monkeypatch)
    assert np.allclose(range_embeddings(first, last)[1], stored)
    assert calls == []  # every embedding fresh: no text read, no encoder pass
    edited = Product.objects.get(pk=rows[2][0])
    product_update(product_id=edited.pk, expected_version=edited.version, changes={"title": "Cordless drill 18V"})
    ids, again = range_embeddings(first, last)
    assert len(calls) == 1
    assert "Cordless drill 18V" in calls[0][0]
    assert ids == [pk for pk, *_ in rows]
    assert not np.allclose(again[2], stored[2], atol=1e-2)
    assert np.allclose(np.delete(again, 2, axis=0), np.delete(stored, 2, axis=0))
    # Read once more: the edited product's new vector is dated after its edit, so it is trusted without its text.
    edited.refresh_from_db()
    assert ProductEmbedding.objects.get(product=edited).updated_at >= edited.updated_at
    calls.clear()
    assert np.allclose(range_embeddings(first, last)[1], again, atol=1e-3)  # float16 on disk
    assert calls == []
