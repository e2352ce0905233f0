"""Toy products and a tiny BERT for the engine's tests. No Django here: tests/mlcore/engine/test_gpu.py uses them
with --noconftest on a GPU machine that has only PyTorch and transformers."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = {
    "kitchen": ["dishwasher", "fridge", "oven", "microwave"],
    "phones": ["iphone", "galaxy", "pixel", "nokia"],
    "tv": ["television", "oled", "qled", "hdtv"],
}


def toy_products(n: int, seed: int) -> tuple[list[str], list[str]]:
    """n titles and their labels, the three labels in turn."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = list(WORDS)[i % 3]
        texts.append(f"{rng.choice(WORDS[label])} model {rng.randint(1, 999)} {rng.choice(['black', 'white'])}")
        labels.append(label)
    return texts, labels


def tiny_bert(
    folder: Path, *, tokenizer_path: str | None = None, hidden_size: int = 32, intermediate_size: int = 64
) -> Path:
    """A 2-layer BERT with random weights and the packaged tokenizer (or another), saved as safetensors: trains in
    seconds."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    if tokenizer_path is None:
        from mlcore.engine.artifacts import default_base_model

        tokenizer_path = default_base_model()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=intermediate_size,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
