"""The mean-pooled classifier (engine/pooled.py): its head starts as the centroid classifier, versions are saved and
served as that model, warm starts keep only rows that read the same features, and other encoder families keep
transformers' [CLS] head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlcore.engine.artifacts import default_base_model, label_map
from mlcore.engine.pooled import ARCHITECTURE, CENTROID_SCALE, is_mean_pooled, load_for_classification, model_class
from mlcore.engine.prediction import Classifier
from mlcore.engine.training import _initial_model, train
from mlcore.engine.types import TrainingConfig
from tests.mlcore.engine.toy import toy_products

LABELS = ["kitchen", "phones", "tv"]


def _embeddings(encoder: Path, texts: list[str]) -> np.ndarray:
    """Mean of the real tokens' vectors, unit length: computed here with the plain encoder, not the engine."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = AutoModel.from_pretrained(encoder).eval()
    encoded = tokenizer(texts, truncation=True, max_length=16, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state.numpy()
    mask = encoded["attention_mask"].numpy()[..., None]
    mean = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def _start(source: Path, texts: list[str], labels: list[str], *, known: list[str], all_labels: list[str]):
    from transformers import AutoTokenizer

    return _initial_model(
        str(source),
        labels=all_labels,
        known=known,
        tokenizer=AutoTokenizer.from_pretrained(source),
        train_texts=texts,
        train_labels=labels,
        max_length=16,
        device="cpu",
    )


def _train_v1(config: TrainingConfig, texts: list[str], labels: list[str], tmp_path: Path, **kwargs):
    """Train on the toy titles, the first 15 validating, into tmp_path / "v1"."""
    return train(
        config,
        train_texts=texts,
        train_labels=labels,
        val_texts=texts[:15],
        val_labels=labels[:15],
        output_dir=tmp_path / "v1",
        **kwargs,
    )


def _logits(model, tokenizer_path: Path, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoTokenizer

    encoded = AutoTokenizer.from_pretrained(tokenizer_path)(
        texts, truncation=True, max_length=16, padding=True, return_tensors="pt"
    )
    model.eval()
    with torch.no_grad():
        return model(**encoded).logits.numpy()


def test_before_its_first_step_the_model_is_the_centroid_classifier(tiny_encoder: Path):
    texts, labels = toy_products(60, seed=5)
    model = _start(tiny_encoder, texts, labels, known=[], all_labels=LABELS)
    assert isinstance(model, model_class())

    vectors = _embeddings(tiny_encoder, texts)
    centroids = np.stack([vectors[[i for i, x in enumerate(labels) if x == label]].sum(axis=0) for label in LABELS])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    probe = [*texts[:12], "oled television 55 inch", "galaxy phone"]
    expected = CENTROID_SCALE * _embeddings(tiny_encoder, probe) @ centroids.T
    np.testing.assert_allclose(_logits(model, tiny_encoder, probe), expected, atol=1e-4)


def test_a_version_is_saved_and_served_as_the_mean_pooled_model(tiny_encoder: Path, tmp_path: Path):
    texts, labels = toy_products(90, seed=6)
    config = TrainingConfig(
        base_model=str(tiny_encoder), epochs=2, batch_size=16, max_length=16, learning_rate=5e-3, device="cpu"
    )
    result = _train_v1(config, texts, labels, tmp_path)
    assert is_mean_pooled(result.output_dir)
    assert json.loads((result.output_dir / "config.json").read_text())["architectures"] == [ARCHITECTURE]
    classifier = Classifier(result.output_dir, device="cpu", max_length=16)
    assert isinstance(classifier.model, model_class())
    # What the Classifier serves is what training saved: the same logits as the saved model loaded by hand.
    probe = texts[:10]
    expected = _logits(load_for_classification(result.output_dir), tiny_encoder, probe)
    served = classifier.predict(probe, top_k=3, keep_probabilities=True).probabilities
    assert served is not None
    np.testing.assert_array_equal(served.argmax(axis=1), expected.argmax(axis=1))


def test_a_warm_start_keeps_a_mean_pooled_versions_rows_and_gives_new_labels_their_centroid(
    tiny_encoder: Path, tmp_path: Path
):
    from safetensors.torch import load_file

    texts, labels = toy_products(60, seed=7)
    config = TrainingConfig(
        base_model=str(tiny_encoder), epochs=1, batch_size=16, max_length=16, learning_rate=5e-3, device="cpu"
    )
    first = _train_v1(config, texts, labels, tmp_path)
    grown = ["aaa-sofas", *LABELS]  # sorts first: every old row moves by one
    sofas = ["sofa corner grey", "sofa bed blue", "sofa leather brown"]
    model = _start(
        first.output_dir, [*texts, *sofas], [*labels, *["aaa-sofas"] * 3], known=first.labels, all_labels=grown
    )
    old = load_file(str(first.output_dir / "model.safetensors"))
    for i, label in enumerate(first.labels):
        np.testing.assert_array_equal(
            model.classifier.weight[grown.index(label)].detach().numpy(), old["classifier.weight"][i].numpy()
        )
    # The new row is the sofas' centroid under v1's encoder.
    centroid = _embeddings(first.output_dir, sofas).sum(axis=0)
    np.testing.assert_allclose(
        model.classifier.weight[0].detach().numpy(),
        CENTROID_SCALE * centroid / np.linalg.norm(centroid),
        atol=1e-4,
    )
    assert float(model.classifier.bias[0]) == 0.0


def test_a_version_with_a_cls_head_is_warm_started_with_every_row_from_its_centroid(tiny_encoder: Path, tmp_path: Path):
    """A version trained before the mean-pooled model (transformers' [CLS] head): its encoder is kept, its head rows
    (which read the [CLS] pooler's output) are not."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    old = tmp_path / "cls-version"
    torch.manual_seed(1)
    AutoModelForSequenceClassification.from_pretrained(
        tiny_encoder, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={x: i for i, x in enumerate(LABELS)}
    ).save_pretrained(old, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_encoder).save_pretrained(old)
    assert not is_mean_pooled(old)
    assert label_map(old) == LABELS
    # Such a version still serves as it was saved.
    assert type(Classifier(old, device="cpu", max_length=16).model).__name__ == "BertForSequenceClassification"

    texts, labels = toy_products(60, seed=8)
    model = _start(old, texts, labels, known=LABELS, all_labels=LABELS)
    assert isinstance(model, model_class())
    fresh = _start(tiny_encoder, texts, labels, known=[], all_labels=LABELS)
    # The same encoder weights (the tiny encoder's, saved in the old version) and so the same centroid head.
    np.testing.assert_allclose(
        model.classifier.weight.detach().numpy(), fresh.classifier.weight.detach().numpy(), atol=1e-5
    )


def test_an_encoder_of_another_family_keeps_transformers_cls_head(tmp_path: Path):
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    encoder = tmp_path / "tiny-distilbert"
    tokenizer = AutoTokenizer.from_pretrained(default_base_model())
    torch.manual_seed(0)
    DistilBertModel(
        DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, hidden_dim=64, n_layers=2, n_heads=2)
    ).save_pretrained(encoder, safe_serialization=True)
    tokenizer.save_pretrained(encoder)

    texts, labels = toy_products(60, seed=9)
    config = TrainingConfig(base_model=str(encoder), epochs=1, batch_size=16, max_length=16, device="cpu")
    result = _train_v1(config, texts, labels, tmp_path)
    assert not is_mean_pooled(result.output_dir)
    assert json.loads((result.output_dir / "config.json").read_text())["architectures"] == [
        "DistilBertForSequenceClassification"
    ]
    assert Classifier(result.output_dir, device="cpu", max_length=16).predict(texts[:4], top_k=1).top_indices.shape == (
        4,
        1,
    )


@pytest.mark.parametrize("rows", [None, {1}])
def test_a_class_without_training_text_keeps_its_row(tiny_encoder: Path, rows):
    from transformers import AutoTokenizer

    from mlcore.engine.pooled import init_head_from_centroids

    model = model_class().from_pretrained(tiny_encoder, num_labels=3, use_safetensors=True)
    before = model.classifier.weight.detach().clone()
    texts, labels = ["iphone 15", "pixel 8"], [1, 1]  # only class 1 has texts
    assert init_head_from_centroids(model, AutoTokenizer.from_pretrained(tiny_encoder), texts, labels, rows=rows) == 1
    assert (model.classifier.weight[0] == before[0]).all()
    assert (model.classifier.weight[2] == before[2]).all()
    assert float(model.classifier.weight[1].norm()) == pytest.approx(CENTROID_SCALE, rel=1e-5)


def test_a_cancel_during_the_centroid_pass_stops_training_before_its_first_step(tiny_encoder: Path, tmp_path: Path):
    from mlcore.engine.training import TrainingCancelled

    texts, labels = toy_products(300, seed=10)
    asked = []

    def stop_on_the_second_batch() -> bool:
        asked.append(1)
        return len(asked) >= 2

    config = TrainingConfig(base_model=str(tiny_encoder), epochs=1, batch_size=16, max_length=16, device="cpu")
    with pytest.raises(TrainingCancelled):
        _train_v1(config, texts, labels, tmp_path, should_stop=stop_on_the_second_batch)
    assert len(asked) == 2  # asked by the centroid pass (64 texts a batch), never by a training step
    assert not (tmp_path / "v1").exists()
