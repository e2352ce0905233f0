"""The engine on a GPU: bf16 inference and training. Skipped where there is none (CI never has one).

Runs without Django and without the shared fixtures, so that `bench/device_check.sh` can run it on a GPU machine
that has only PyTorch and transformers: `python3 -m pytest --noconftest tests/mlcore/engine/test_gpu.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.mlcore.engine.toy import tiny_bert, toy_products

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # BENCH_TOKENIZER: bench/device_check.sh carries the tokenizer to a machine without the packaged encoder.
    folder = tmp_path_factory.mktemp("tiny-gpu")
    return tiny_bert(folder, tokenizer_path=os.environ.get("BENCH_TOKENIZER"), hidden_size=64, intermediate_size=128)


def test_trains_in_bf16_on_the_gpu_and_predicts_like_the_cpu(tiny_base: Path, tmp_path: Path):
    from mlcore.engine.prediction import Classifier
    from mlcore.engine.training import train
    from mlcore.engine.types import TrainingConfig

    train_texts, train_labels = toy_products(300, seed=1)
    val_texts, val_labels = toy_products(60, seed=2)
    config = TrainingConfig(
        base_model=str(tiny_base), epochs=8, learning_rate=5e-3, batch_size=16, max_length=16, device="cuda"
    )
    result = train(
        config,
        train_texts=train_texts,
        train_labels=train_labels,
        val_texts=val_texts,
        val_labels=val_labels,
        output_dir=tmp_path / "v1",
    )
    assert result.device.startswith("cuda")

    on_gpu = Classifier(result.output_dir, device="cuda", max_length=16)
    assert next(on_gpu.model.parameters()).dtype == (
        torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    )
    gpu = on_gpu.predict(val_texts, top_k=2, batch_tokens=512)
    accuracy = np.mean([on_gpu.labels[p[0]] == t for p, t in zip(gpu.top_indices, val_labels, strict=True)])
    assert accuracy > 0.8  # chance is 1/3

    cpu = Classifier(result.output_dir, device="cpu", max_length=16).predict(val_texts, top_k=2)
    assert (gpu.top_indices[:, 0] == cpu.top_indices[:, 0]).mean() >= 0.95  # bf16 against fp32
    np.testing.assert_allclose(gpu.top_probabilities, cpu.top_probabilities, atol=0.05)


def test_zero_shot_embeddings_on_the_gpu_match_the_cpu(tiny_base: Path):
    from mlcore.engine.zeroshot import Encoder

    texts = [f"product {i} {'with a longer title ' * (i % 5)}" for i in range(100)]
    gpu = Encoder(tiny_base, device="cuda").embed(texts, batch_tokens=512)
    cpu = Encoder(tiny_base, device="cpu").embed(texts, batch_tokens=512)
    np.testing.assert_allclose(gpu, cpu, atol=1e-3)
