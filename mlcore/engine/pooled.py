"""The model the engine fine-tunes: a BERT-family encoder read the way sentence encoders are trained to be read (the
mean of its token vectors, L2-normalised) and a linear head that starts from the class centroids of the training
titles instead of random weights.

Why: transformers' BertForSequenceClassification classifies from the [CLS] token through a pooler layer that
all-MiniLM-L6-v2 never trained (sentence-transformers pools by mean), behind a random head, so the first epochs are
spent learning what the encoder already knew. On Flipkart's 900 categories with ~10 titles each that recipe reached
0.739 accuracy after 2 epochs and 0.905 after 10; read by the mean, with the centroids as the head, the model is the
fast head's classifier before its first step (0.872) and fine-tuning starts from there (README, "Both catalogs").
Fitting the head before tuning the encoder is "linear probing, then fine-tuning" (Kumar et al., ICLR 2022): a head
that already fits moves the encoder's features less.

Other encoder families keep transformers' own sequence-classification model (a [CLS] head from random weights):
load_for_classification() reads which one a folder holds from its config's `architectures`.

torch and transformers are imported inside functions (the web process never loads them), so the model class is
built on first use."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from mlcore.engine.calibration import COSINE_TEMPERATURE

ARCHITECTURE = "BertMeanPooledForSequenceClassification"
# A centroid row holds unit cosines; scaled as the fast head's and zero-shot's (x 20) the softmax starts as confident as
# the fast head's rather than near uniform over hundreds of classes.
CENTROID_SCALE = 1 / COSINE_TEMPERATURE


@cache
def model_class() -> Any:
    import torch
    from transformers import BertModel, BertPreTrainedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    class BertMeanPooledForSequenceClassification(BertPreTrainedModel):
        # Loading a sentence encoder into this model always finds its unused pooler and no head (every head row is
        # then set from the centroids or a previous version): transformers' load report said so as a warning table in
        # the worker's log on every training run, which reads like an error. Other keys are still reported.
        _keys_to_ignore_on_load_unexpected = [r"^pooler\."]
        _keys_to_ignore_on_load_missing = [r"^classifier\."]

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.num_labels = config.num_labels
            self.bert = BertModel(config, add_pooling_layer=False)
            self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
            self.post_init()

        def forward(
            self,
            input_ids: Any = None,
            attention_mask: Any = None,
            token_type_ids: Any = None,
            labels: Any = None,
            **_: Any,  # what PEFT's wrapper passes on (return_dict, output_attentions, ...): not needed here
        ) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            logits = self.classifier(mean_pooled(hidden, attention_mask))
            loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return SequenceClassifierOutput(loss=loss, logits=logits)

    return BertMeanPooledForSequenceClassification


def mean_pooled(hidden: Any, attention_mask: Any) -> Any:
    """The sentence embedding sentence-transformers trains MiniLM for: the mean over real tokens, unit length."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean, dim=-1)


def supports_mean_pooling(model_type: str) -> bool:
    return model_type == "bert"


def is_mean_pooled(folder: str | Path) -> bool:
    config = Path(folder) / "config.json"
    return config.exists() and ARCHITECTURE in (json.loads(config.read_text()).get("architectures") or [])


def load_for_classification(folder: str | Path, **kwargs: Any) -> Any:
    """The sequence classifier a folder holds: the mean-pooled one where it was saved as such, else transformers'."""
    if is_mean_pooled(folder):
        return model_class().from_pretrained(folder, use_safetensors=True, **kwargs)
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True, **kwargs)


def init_head_from_centroids(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    label_ids: Sequence[int],
    *,
    rows: set[int] | None = None,
    max_length: int = 64,
    batch_size: int = 64,
    should_stop: Callable[[], bool] | None = None,
) -> int | None:
    """Set each head row in `rows` (None: every row) to its class's centroid of the training texts' embeddings times
    CENTROID_SCALE, bias 0. A class with no training text keeps its row. Returns how many rows were set, or None when
    should_stop() said stop (asked every batch: a pass over a large label set takes a minute on a CPU), the head
    untouched."""
    import torch

    wanted = set(range(model.config.num_labels)) if rows is None else rows
    keep = [i for i, label in enumerate(label_ids) if label in wanted]
    if not keep:
        return 0
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums = torch.zeros(model.config.num_labels, model.config.hidden_size, device=device)
    with torch.no_grad():
        for start in range(0, len(keep), batch_size):
            if should_stop and should_stop():
                model.train(was_training)
                return None
            batch = keep[start : start + batch_size]
            encoded = tokenizer(
                [texts[i] for i in batch], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            ).to(device)
            hidden = model.bert(**encoded).last_hidden_state
            targets = torch.tensor([label_ids[i] for i in batch], device=device)
            sums.index_add_(0, targets, mean_pooled(hidden, encoded["attention_mask"]).float())
        filled = [row for row in sorted(wanted) if sums[row].abs().sum() > 0]
        index = torch.tensor(filled, device=device, dtype=torch.long)
        centroids = torch.nn.functional.normalize(sums[index], dim=-1) * CENTROID_SCALE
        model.classifier.weight[index] = centroids.to(model.classifier.weight.dtype)
        model.classifier.bias[index] = 0.0
    model.train(was_training)
    return len(filled)
