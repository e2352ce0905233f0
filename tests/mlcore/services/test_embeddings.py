from __future__ import annotations

import numpy as np

from catalog.models import Product
from mlcore.models import ProductEmbedding
from mlcore.services.embeddings import product_embeddings, stored_embeddings


def test_embeddings_are_stored_once_and_again_when_the_text_changes(ml_settings, labelled_catalog, monkeypatch):
    from mlcore.services import embeddings

    products = list(Product.objects.order_by("pk").values_list("pk", "title")[:4])
    ids, texts = [pk for pk, _ in products], [title for _, title in products]
    first = product_embeddings(ids, texts)
    assert first.shape[0] == 4
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-2)
    assert ProductEmbedding.objects.count() == 4
    calls = []
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
    again = product_embeddings(ids, texts)
    assert calls == []  # all four read back, no encoder pass
    assert np.allclose(again, first, atol=1e-3)  # float16 on disk
    texts[1] = texts[1] + " stainless"
    product_embeddings(ids, texts)
    assert calls == [[texts[1]]]  # only the edited text is embedded again
    found, matrix = stored_embeddings(ids)
    assert sorted(found) == sorted(ids)
    assert matrix.shape == (4, first.shape[1])
