"""A pickle planted in the model store runs nothing: among a version's files, in the Trainer's resume files, in a
fast head, or in the base model's folder. Each plant is a real exploit: unpickling it would create a marker file."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlcore.engine.artifacts import UnsafeArtifactError


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # what an attacker's file does when unpickled: run a call of its choosing
        return (Path.touch, (self.marker,))


def _plant(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(_Exploit(marker)))


def test_a_version_folder_with_a_pickle_is_refused_before_anything_loads(tiny_encoder: Path, tmp_path: Path):
    from mlcore.engine.prediction import Classifier

    version = tmp_path / "v7"
    shutil.copytree(tiny_encoder, version)
    marker = tmp_path / "owned"
    for name in ("pytorch_model.bin", "extra/optimizer.pt", "labels.pkl"):
        planted = version / name
        planted.parent.mkdir(exist_ok=True)
        _plant(planted, marker)
        with pytest.raises(UnsafeArtifactError, match="pickle"):
            Classifier(version, device="cpu")
        planted.unlink()
    assert not marker.exists()


def test_the_base_model_folder_loads_safetensors_only(tiny_encoder: Path, tmp_path: Path):
    """A pytorch_model.bin beside model.safetensors in the base model's folder (MLCORE_BASE_MODEL) is never read."""
    from mlcore.engine.zeroshot import Encoder

    base = tmp_path / "base"
    shutil.copytree(tiny_encoder, base)
    marker = tmp_path / "owned"
    _plant(base / "pytorch_model.bin", marker)
    Encoder(str(base), device="cpu", max_length=16).embed(["a fridge"])
    assert not marker.exists()


def test_resume_files_are_read_weights_only(tmp_path: Path):
    """The Trainer's checkpoints hold optimizer.pt, scheduler.pt and rng_state.pth (pickle format by design);
    transformers reads them with torch.load(weights_only=True), whose unpickler refuses any call: a planted one
    fails to load, and its code never runs."""
    import inspect

    import torch
    from transformers import trainer

    marker = tmp_path / "owned"
    planted = tmp_path / "rng_state.pth"
    _plant(planted, marker)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(planted, weights_only=True)
    assert not marker.exists()
    source = inspect.getsource(trainer.Trainer)
    assert "weights_only=False" not in source  # the version pinned here never asks for the unsafe loader


def test_a_fast_head_is_arrays_only(tmp_path: Path):
    from mlcore.engine.fasthead import HEAD_FILE, FastHead

    head = FastHead(labels=["1", "2"], centroids=np.eye(2, 4, dtype=np.float32), counts=np.array([3, 3]))
    head.save(tmp_path / "fast")
    marker = tmp_path / "owned"
    np.savez(tmp_path / "fast" / HEAD_FILE, centroids=np.array([_Exploit(marker)], dtype=object), counts=np.array([1]))
    with pytest.raises(ValueError, match="allow_pickle"):
        FastHead.load(tmp_path / "fast")
    assert not marker.exists()
