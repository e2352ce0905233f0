"""Batched inference: length-sorted batches (less padding), top-k with probabilities, margin and entropy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mlcore.engine.artifacts import check_safe, label_map, load_metrics
from mlcore.engine.batching import default_batch_tokens, tokenized_batches
from mlcore.engine.device import pick_device, run_batches
from mlcore.engine.hierarchy import margin_and_entropy
from mlcore.engine.pooled import load_for_classification


@dataclass
class Predictions:
    top_indices: npt.NDArray[np.int64]  # (n, k) class indices, best first
    top_probabilities: npt.NDArray[np.float32]  # (n, k)
    margin: npt.NDArray[np.float32]
    entropy: npt.NDArray[np.float32]
    probabilities: npt.NDArray[np.float32] | None = None  # (n, classes) when asked for


class Classifier:
    """A saved model version, loaded once per worker, with its label map."""

    def __init__(
        self,
        folder: str | Path,
        *,
        device: str = "auto",
        max_length: int = 64,
        threads: int | None = None,
        quantize: bool = False,
    ) -> None:
        import torch
        from transformers import AutoTokenizer

        path = check_safe(folder)
        if threads:
            torch.set_num_threads(threads)
        self.device = pick_device(device)
        self.labels = label_map(path)
        # The version's calibration (engine/calibration.py): 1.0 for one saved before it was fitted.
        self.temperature = float(load_metrics(path).get("temperature") or 1.0)
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = load_for_classification(path)
        self.model.to(self.device).eval()
        if self.device.startswith("cuda") and torch.cuda.is_bf16_supported():
            self.model.to(torch.bfloat16)
        elif quantize and self.device == "cpu":
            # int8 weights for the Linear layers (dynamic quantization): faster on CPU; bench/accuracy.py measures
            # what it costs in accuracy before anyone turns it on (MLCORE_QUANTIZE).
            self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)

    def predict(
        self, texts: list[str], *, top_k: int = 5, batch_tokens: int | None = None, keep_probabilities: bool = False
    ) -> Predictions:
        """Top-k classes of every text. batch_tokens: padded tokens per batch (default: by device, see
        engine/batching.py)."""
        import torch

        n, classes = len(texts), len(self.labels)
        k = min(top_k, classes)
        all_probabilities = np.zeros((n, classes), dtype=np.float32)

        def score(item: tuple[list[int], Any]) -> None:
            chunk, batch = item
            logits = self.model(**{key: value.to(self.device) for key, value in batch.items()}).logits.float()
            all_probabilities[chunk] = torch.softmax(logits / self.temperature, dim=-1).cpu().numpy()

        tokens = batch_tokens or default_batch_tokens(self.device)
        batches = tokenized_batches(self.tokenizer, texts, max_length=self.max_length, tokens=tokens)
        run_batches(score, batches, device=self.device)
        top = np.argsort(-all_probabilities, axis=1)[:, :k]
        margin, entropy = margin_and_entropy(all_probabilities)
        return Predictions(
            top_indices=top.astype(np.int64),
            top_probabilities=np.take_along_axis(all_probabilities, top, axis=1),
            margin=margin,
            entropy=entropy,
            probabilities=all_probabilities if keep_probabilities else None,
        )
