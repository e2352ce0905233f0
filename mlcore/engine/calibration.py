"""Temperature scaling (Guo et al., 2017): one scalar T that divides a model's logits so that its confidence means
what it says. Fitted on the validation split after training, stored with the version, applied wherever the version
scores. It changes no ranking (argmax and top-k stay), only how sure the probabilities are."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

# Cosines live in [-1, 1]: zero-shot, the fast head and the mean-pooled model's centroid head divide them by this
# before the softmax, so that their probabilities start about as sure as a trained head's (and a fitted T lands in
# the usual range) rather than near uniform over hundreds of categories.
COSINE_TEMPERATURE = 0.05
# A validation split of a few dozen items can pull T anywhere: keep it within what a fine-tuned classifier needs.
T_MIN, T_MAX = 0.25, 10.0
# Fewer validation items than this, or not one mistake among them, and there is nothing to calibrate on: with every
# item right the likelihood only grows as T shrinks, and a fitted T would make every suggestion look certain (the
# demo's 18-item validation split did exactly that: T hit its floor).
MIN_ITEMS = 50


def _log_softmax(logits: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=1, keepdims=True)
    out: npt.NDArray[np.float64] = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return out


def negative_log_likelihood(logits: npt.NDArray[np.floating[Any]], truth: npt.NDArray[np.int_], t: float) -> float:
    log_p = _log_softmax(np.asarray(logits, dtype=np.float64) / t)
    return float(-log_p[np.arange(len(truth)), truth].mean())


def fit_temperature(logits: npt.NDArray[np.floating[Any]], truth: npt.NDArray[np.int_]) -> float:
    """The T in [T_MIN, T_MAX] that minimises the validation NLL (golden-section search on log T: the NLL is
    unimodal in T). 1.0 when there is nothing to fit on (see MIN_ITEMS)."""
    truth = np.asarray(truth)
    if len(truth) < MIN_ITEMS or bool((np.asarray(logits).argmax(axis=1) == truth).all()):
        return 1.0
    low, high = math.log(T_MIN), math.log(T_MAX)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa = negative_log_likelihood(logits, truth, math.exp(a))
    fb = negative_log_likelihood(logits, truth, math.exp(b))
    for _ in range(60):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = negative_log_likelihood(logits, truth, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = negative_log_likelihood(logits, truth, math.exp(b))
    return float(math.exp((low + high) / 2))


def uncalibrated(probabilities: npt.NDArray[np.floating[Any]], temperature: float) -> npt.NDArray[np.float64]:
    """The probabilities before scaling, recovered from the scaled ones: softmax(z / T) ** T is proportional to
    softmax(z), so the version's ECE before and after calibration come from one scoring pass."""
    raised = np.power(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-30, 1.0), temperature)
    out: npt.NDArray[np.float64] = raised / raised.sum(axis=1, keepdims=True)
    return out
