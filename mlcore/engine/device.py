from __future__ import annotations


def pick_device(preference: str = "auto") -> str:
    """CUDA when there is one (or when asked), else CPU."""
    import torch

    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but no GPU is visible to this worker.")
    return preference
