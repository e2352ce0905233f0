from __future__ import annotations

import csv
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlcore.engine.artifacts import UnsafeArtifactError, check_safe, default_base_model, label_map, load_metrics
from mlcore.engine.prediction import Classifier
from mlcore.engine.training import train
from mlcore.engine.types import TrainingConfig
from tests.conftest import DEMO_DATA
from tests.mlcore.engine.toy import toy_products


@pytest.mark.parametrize("method", ["full", "lora"])
def test_tiny_model_trains_saves_safetensors_and_predicts(tiny_encoder: Path, tmp_path: Path, method: str):
    train_texts, train_labels = toy_products(120, seed=1)
    val_texts, val_labels = toy_products(30, seed=2)
    # LoRA adapts a few low-rank matrices of a random tiny encoder: it needs a higher rate and more steps.
    lora = method == "lora"
    config = TrainingConfig(
        base_model=str(tiny_encoder),
        method=method,
        epochs=20 if lora else 8,
        learning_rate=3e-2 if lora else 5e-3,
        batch_size=16,
        max_length=16,
        device="cpu",
        lora_r=8,
        lora_alpha=16,
        early_stopping_patience=6,
    )
    result = train(
        config,
        train_texts=train_texts,
        train_labels=train_labels,
        val_texts=val_texts,
        val_labels=val_labels,
        output_dir=tmp_path / "v1",
    )

    assert result.labels == ["kitchen", "phones", "tv"]
    assert label_map(result.output_dir) == result.labels
    assert sorted(p.name for p in result.output_dir.glob("*.safetensors")) == ["model.safetensors"]
    assert result.history.evaluations
    assert result.history.losses
    assert load_metrics(result.output_dir)["config"]["method"] == method

    classifier = Classifier(result.output_dir, device="cpu", max_length=16)
    predictions = classifier.predict(val_texts, top_k=2, batch_tokens=40)
    assert predictions.top_indices.shape == (30, 2)
    assert classifier.predict([], top_k=2).top_indices.shape == (0, 2)  # an empty chunk of the catalog
    accuracy = sum(classifier.labels[p[0]] == t for p, t in zip(predictions.top_indices, val_labels, strict=True)) / 30
    assert accuracy > 0.8  # chance is 1/3
    assert (predictions.top_probabilities[:, 0] >= predictions.top_probabilities[:, 1]).all()
    # int8 weights on the CPU: the same answers for nearly every product.
    quantized = Classifier(result.output_dir, device="cpu", max_length=16, quantize=True).predict(val_texts, top_k=1)
    agreement = (quantized.top_indices[:, 0] == predictions.top_indices[:, 0]).mean()
    assert agreement >= 0.9


def test_warm_start_when_the_labels_match(tiny_encoder: Path, tmp_path: Path):
    texts, labels = toy_products(60, seed=3)
    config = TrainingConfig(base_model=str(tiny_encoder), epochs=1, batch_size=16, max_length=16, device="cpu")
    first = train(
        config,
        train_texts=texts,
        train_labels=labels,
        val_texts=texts[:15],
        val_labels=labels[:15],
        output_dir=tmp_path / "v1",
    )
    second = train(
        config,
        train_texts=texts,
        train_labels=labels,
        val_texts=texts[:15],
        val_labels=labels[:15],
        output_dir=tmp_path / "v2",
        warm_start_from=first.output_dir,
    )
    assert second.warm_started
    # A new label: the encoder still comes from v1, and the head keeps v1's rows for the labels it knew.
    third = train(
        config,
        train_texts=[*texts, "sofa"],
        train_labels=[*labels, "furniture"],
        val_texts=texts[:15],
        val_labels=labels[:15],
        output_dir=tmp_path / "v3",
        warm_start_from=first.output_dir,
    )
    assert third.warm_started


def test_a_grown_label_set_keeps_the_old_head_rows(tiny_encoder: Path, tmp_path: Path):
    import torch
    from safetensors.torch import load_file

    from mlcore.engine.pooled import load_for_classification
    from mlcore.engine.training import _copy_head_rows

    texts, labels = toy_products(40, seed=4)
    config = TrainingConfig(base_model=str(tiny_encoder), epochs=1, batch_size=16, max_length=16, device="cpu")
    first = train(
        config,
        train_texts=texts,
        train_labels=labels,
        val_texts=texts[:10],
        val_labels=labels[:10],
        output_dir=tmp_path / "v1",
    )
    known = first.labels
    grown = sorted([*known, "aaa-new"])  # the new label sorts first: every old row moves by one
    index = {label: i for i, label in enumerate(grown)}
    model = load_for_classification(first.output_dir, num_labels=len(grown), ignore_mismatched_sizes=True)
    _copy_head_rows(model, previous=str(first.output_dir), known=known, label_index=index)
    old = load_file(str(first.output_dir / "model.safetensors"))
    for i, label in enumerate(known):
        assert torch.equal(model.classifier.weight[index[label]], old["classifier.weight"][i])
        assert torch.equal(model.classifier.bias[index[label]], old["classifier.bias"][i])


def test_pickle_weights_are_refused(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(UnsafeArtifactError, match="pickle"):
        check_safe(tmp_path)
    with pytest.raises(UnsafeArtifactError, match="pickle"):
        Classifier(tmp_path, device="cpu")


@pytest.mark.slow
def test_packaged_encoder_learns_the_shipped_offers(tmp_path: Path):
    """The real all-MiniLM-L6-v2 on a small slice of PriceRunner, split by cluster: far above chance (10 classes)."""
    rows = list(csv.reader((DEMO_DATA / "pricerunner" / "pricerunner_aggregate.csv").open(encoding="utf-8")))
    rng = random.Random(0)
    clusters = sorted({r[3] for r in rows})
    held_out = set(rng.sample(clusters, len(clusters) // 5))
    train_rows = [r for r in rows if r[3] not in held_out]
    test_rows = [r for r in rows if r[3] in held_out]
    rng.shuffle(train_rows)
    rng.shuffle(test_rows)
    train_rows, test_rows = train_rows[:600], test_rows[:300]
    config = TrainingConfig(
        base_model=default_base_model(),
        epochs=3,
        learning_rate=3e-4,
        batch_size=32,
        max_length=32,
        device="cpu",
        evals_per_epoch=1,
    )
    result = train(
        config,
        train_texts=[r[1] for r in train_rows],
        train_labels=[r[6] for r in train_rows],
        val_texts=[r[1] for r in test_rows[:100]],
        val_labels=[r[6] for r in test_rows[:100]],
        output_dir=tmp_path / "minilm",
    )
    classifier = Classifier(result.output_dir, device="cpu", max_length=32)
    predictions = classifier.predict([r[1] for r in test_rows[100:]], top_k=1)
    accuracy = (
        sum(classifier.labels[p[0]] == r[6] for p, r in zip(predictions.top_indices, test_rows[100:], strict=False))
        / 200
    )
    assert accuracy > 0.8, accuracy


def test_a_killed_run_resumes_from_its_last_checkpoint(
    tiny_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from mlcore.engine import training
    from mlcore.engine.training import TrainingCancelled

    centroid_passes: list[int] = []
    fit_head = training.init_head_from_centroids

    def counted(*args: Any, **kwargs: Any) -> int | None:
        centroid_passes.append(1)
        return fit_head(*args, **kwargs)

    monkeypatch.setattr(training, "init_head_from_centroids", counted)

    texts, labels = toy_products(96, seed=4)
    config = TrainingConfig(
        base_model=str(tiny_encoder), epochs=4, batch_size=16, max_length=16, device="cpu", early_stopping_patience=10
    )
    checkpoints = tmp_path / "checkpoints"
    steps: list[int] = []

    def killed_after_two_epochs() -> bool:
        return len(list(checkpoints.glob("checkpoint-*"))) >= 2

    arguments = {
        "train_texts": texts,
        "train_labels": labels,
        "val_texts": texts[:15],
        "val_labels": labels[:15],
        "output_dir": tmp_path / "v1",
        "checkpoint_dir": checkpoints,
    }
    with pytest.raises(TrainingCancelled):  # stands in for the worker dying
        train(config, should_stop=killed_after_two_epochs, **arguments)
    assert not (tmp_path / "v1").exists()
    kept = sorted(int(p.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*"))
    assert kept
    assert len(centroid_passes) == 1

    result = train(config, on_progress=lambda p: steps.append(p.step), **arguments)

    # The checkpoint overwrites every weight: the resumed run does not pay the centroid pass again.
    assert len(centroid_passes) == 1

    # The curve so far is reported again, then training goes on from the checkpoint: steps never go back to 0.
    assert steps == sorted(steps)
    assert kept[-1] in steps
    assert load_metrics(result.output_dir)["resumed_from"] == f"checkpoint-{kept[-1]}"
    assert result.history.losses[0]["step"] < kept[-1]  # the curve before the kill is kept
    assert not checkpoints.exists()  # done: the checkpoints are gone


def test_checkpoints_for_other_labels_are_not_resumed(tiny_encoder: Path, tmp_path: Path):
    from mlcore.engine.training import TrainingCancelled

    texts, labels = toy_products(48, seed=5)
    config = TrainingConfig(base_model=str(tiny_encoder), epochs=3, batch_size=16, max_length=16, device="cpu")
    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(TrainingCancelled):
        train(
            config,
            train_texts=texts,
            train_labels=labels,
            val_texts=texts[:6],
            val_labels=labels[:6],
            output_dir=tmp_path / "v1",
            checkpoint_dir=checkpoints,
            should_stop=lambda: any(checkpoints.glob("checkpoint-*")),
        )
    result = train(
        config,
        train_texts=[*texts, "sofa", "armchair"],
        train_labels=[*labels, "furniture", "furniture"],
        val_texts=texts[:6],
        val_labels=labels[:6],
        output_dir=tmp_path / "v1",
        checkpoint_dir=checkpoints,
    )
    assert load_metrics(result.output_dir)["resumed_from"] is None


def test_few_labels_train_for_at_least_min_steps(tiny_encoder: Path, tmp_path: Path):
    texts, labels = toy_products(32, seed=6)  # 2 steps an epoch at batch 16
    config = TrainingConfig(base_model=str(tiny_encoder), epochs=1, batch_size=16, max_length=16, device="cpu")
    steps: list[int] = []
    train(
        replace(config, min_steps=20, early_stopping_patience=100),
        train_texts=texts,
        train_labels=labels,
        val_texts=texts[:6],
        val_labels=labels[:6],
        output_dir=tmp_path / "v1",
        on_progress=lambda p: steps.append(p.total_steps),
    )
    assert steps[-1] == 20  # 10 epochs, not the 1 asked for


def test_a_small_validation_set_keeps_the_checkpoint_with_the_lowest_loss(tiny_encoder: Path, tmp_path: Path):
    # 30 validation items: one item moves macro-F1 by several points, so the kept model is the lowest-loss one
    # (macro-F1 kept an early, under-trained checkpoint of the demo's seed model).
    texts, labels = toy_products(90, seed=7)
    config = TrainingConfig(
        base_model=str(tiny_encoder), epochs=6, learning_rate=5e-3, batch_size=16, max_length=16, device="cpu"
    )
    result = train(
        config,
        train_texts=texts[:60],
        train_labels=labels[:60],
        val_texts=texts[60:],
        val_labels=labels[60:],
        output_dir=tmp_path / "v1",
    )
    losses = [point["loss"] for point in result.history.evaluations]
    assert len(losses) >= 3
    assert result.best_validation["eval_loss"] == pytest.approx(min(losses), abs=1e-4)
