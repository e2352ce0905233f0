"""Model speed without a database: inference titles/s for a MiniLM-shaped and a BERT-base-shaped classifier, and
fine-tuning samples/s, on whatever device the engine picks (CUDA when there is one).

    python -m bench.throughput [--n 1000000] [--shapes minilm,bert-base] [--train 20000] [--tokenizer PATH]

Plain Python (mlcore/engine only), so it runs on a GPU machine that has PyTorch and transformers but no Django or
PostgreSQL: `bench/device_check.sh` runs it there with the GPU tests. The models are built from their configs with
random weights and a 10-way head: speed does not depend on what the weights learned, and nothing is downloaded.
Titles are the shipped offers, repeated to --n. The issue's GPU targets: 1M titles with MiniLM in 60 s end to end
(this measures the model's share of it; bench.rescore measures the rest, on PostgreSQL) and a BERT-base shape in 3 min.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OFFERS = REPO / "demo_data" / "pricerunner" / "pricerunner_aggregate.csv"
SHAPES = {
    # all-MiniLM-L6-v2's own shape (the packaged default encoder)
    "minilm": {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536},
    "bert-base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
}
LABELS = [str(i) for i in range(10)]


def titles(n: int) -> list[str]:
    with OFFERS.open(encoding="utf-8") as f:
        shipped = [row[1] for row in csv.reader(f)]
    return list(itertools.islice(itertools.cycle(shipped), n))


def default_tokenizer() -> str:
    from mlcore.engine.artifacts import default_base_model

    return default_base_model()


def build(shape: str, tokenizer_path: str, folder: Path) -> Path:
    from transformers import AutoTokenizer, BertConfig

    from mlcore.engine.pooled import model_class

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    size = SHAPES[shape]
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=size["hidden_size"],
        num_hidden_layers=size["num_hidden_layers"],
        num_attention_heads=size["num_attention_heads"],
        intermediate_size=size["intermediate_size"],
        # The number of labels follows from id2label.
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    # The model training saves for a BERT-family encoder (engine/pooled.py), so the bench times what is served.
    model_class()(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--n", type=int, default=None, help="titles to score (default: 1,000,000 on a GPU, 20,000 else)"
    )
    parser.add_argument("--shapes", default="minilm,bert-base")
    parser.add_argument("--train", type=int, default=None, help="samples for one fine-tuning epoch (MiniLM shape)")
    parser.add_argument(
        "--batch-tokens", type=int, default=None, help="padded tokens per inference batch (default: by device)"
    )
    parser.add_argument("--tokenizer", default=None, help="a folder with the MiniLM tokenizer (default: the package's)")
    args = parser.parse_args()

    import torch

    from mlcore.engine.batching import default_batch_tokens
    from mlcore.engine.device import pick_device
    from mlcore.engine.prediction import Classifier
    from mlcore.engine.training import train
    from mlcore.engine.types import TrainingConfig

    device = pick_device("auto")
    gpu = device.startswith("cuda")
    n = args.n or (1_000_000 if gpu else 20_000)
    batch_tokens = args.batch_tokens or default_batch_tokens(device)
    chip = torch.cuda.get_device_name() if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {chip}; torch {torch.__version__}")
    tokenizer = args.tokenizer or default_tokenizer()
    texts = titles(n)

    with tempfile.TemporaryDirectory() as scratch:
        for shape in args.shapes.split(","):
            folder = build(shape, tokenizer, Path(scratch) / shape)
            # int8 on a CPU, as re-scoring runs there (MLCORE_QUANTIZE); bf16 on a GPU that has it.
            classifier = Classifier(folder, device=device, quantize=not gpu)
            classifier.predict(texts[:1024], batch_tokens=batch_tokens)  # warm up (kernels, allocator)
            if gpu:
                torch.cuda.synchronize()
            started = time.perf_counter()
            classifier.predict(texts, top_k=5, batch_tokens=batch_tokens)
            seconds = time.perf_counter() - started
            print(f"{shape:10} inference: {n:,} titles in {seconds:7.1f} s = {n / seconds:9,.0f} titles/s")
            del classifier
            if gpu:
                torch.cuda.empty_cache()

        samples = args.train or (20_000 if gpu else 1_000)
        folder = build("minilm", tokenizer, Path(scratch) / "train-base")
        config = TrainingConfig(
            base_model=str(folder), epochs=1, batch_size=64 if gpu else 32, device=device, early_stopping_patience=10
        )
        train_texts = texts[:samples]
        train_labels = [LABELS[i % len(LABELS)] for i in range(samples)]
        started = time.perf_counter()
        train(
            config,
            train_texts=train_texts,
            train_labels=train_labels,
            val_texts=texts[samples : samples + 256],
            val_labels=[LABELS[i % len(LABELS)] for i in range(256)],
            output_dir=Path(scratch) / "trained",
        )
        seconds = time.perf_counter() - started
        print(
            f"minilm     fine-tuning: {samples:,} samples, 1 epoch in {seconds:.1f} s "
            f"= {samples / seconds:,.0f} samples/s"
        )


if __name__ == "__main__":
    main()
