"""The arithmetic behind a reclassification's promised and measured precision (plain Python, no Django).

Promised: from the model version's frozen test set, stored as counts (precision/coverage curve and reliability
bins by confidence). Measured: from an audit's blind answers. Both come with their n; a 95 % Wilson interval says
how little 20 answers (or a 23-item test set) prove.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlcore.engine.evaluation import wilson_interval

# How many test items' worth of weight the model's own confidence gets in a reliability bin: a bin with no test
# item falls back on the confidence, one with many on what the test set measured.
PRIOR_STRENGTH = 2.0


def wilson(hits: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion (sound at 0 or n hits and for small n, unlike p ± z·se): the
    one the model's own metrics use."""
    return wilson_interval(hits, n)


@dataclass(frozen=True)
class Estimate:
    """A precision with what it rests on."""

    precision: float | None
    n: int
    hits: int

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.hits, self.n)


def test_precision_at(curve: Sequence[dict[str, Any]], threshold: float) -> Estimate:
    """The test items at or above `threshold` and the share the model got right (the curve's nearest point at or
    above it: exact on a test set small enough to keep every distinct confidence)."""
    above = [point for point in curve if point["threshold"] >= threshold - 1e-12]
    if not above:
        return Estimate(None, 0, 0)
    point = max(above, key=lambda p: p["n"])
    n, hits = int(point["n"]), int(point["hits"])
    return Estimate(hits / n if n else None, n, hits)


def calibration_bins(bins: Sequence[dict[str, Any]]) -> list[tuple[float, float, float]]:
    """(low, high, estimated precision) per reliability bin: the bin's measured accuracy pulled towards its mean
    confidence by PRIOR_STRENGTH pseudo-items."""
    return [
        (
            float(b["low"]),
            float(b["high"]),
            (float(b["hits"]) + PRIOR_STRENGTH * float(b["confidence"])) / (float(b["n"]) + PRIOR_STRENGTH),
        )
        for b in bins
    ]


@dataclass(frozen=True)
class Verdicts:
    correct: int = 0
    wrong: int = 0
    unsure: int = 0
    waiting: int = 0

    @property
    def judged(self) -> int:
        return self.correct + self.wrong

    @property
    def precision(self) -> float | None:
        return self.correct / self.judged if self.judged else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.correct, self.judged)

    def below(self, promise: float | None) -> bool:
        """The measured precision falls short of what was promised (the point estimate: one wrong answer in 20
        already says the group is not the 99 % it was sold as)."""
        return promise is not None and self.precision is not None and self.precision < promise - 1e-9
