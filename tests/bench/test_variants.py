"""The variant benches' arithmetic: bench/zeroshot_variants.py and bench/fasthead_variants.py report figures in the
README that CI never reruns, so their shortcuts are checked against the plain computation here."""

from __future__ import annotations

import numpy as np
import pytest

from bench.fasthead_variants import transforms
from bench.zeroshot_variants import centred


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_centred_scores_are_the_centred_titles_against_the_centred_candidates(alpha):
    rng = np.random.default_rng(0)
    titles, candidates = rng.normal(size=(5, 8)), rng.normal(size=(7, 8)) * 3
    pool = rng.normal(size=(20, 8)) + 0.5
    unit = candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    shifted = unit - alpha * unit.mean(axis=0)
    shifted /= np.linalg.norm(shifted, axis=1, keepdims=True)
    expected = (titles - alpha * pool.mean(axis=0)) @ shifted.T
    assert np.allclose(centred(candidates, pool, alpha, titles @ candidates.T), expected, atol=1e-5)


def test_the_fast_head_s_transforms_are_unit_rows_and_the_centred_ones_have_no_mean_direction():
    x = np.random.default_rng(1).normal(size=(400, 16)) + 2.0
    out = transforms(x)
    assert set(out) == {"centred", "whitened (64 axes)", "whitened (128 axes)"}
    for moved in out.values():
        assert np.allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-5)
    # Raw rows all lean along the offset; centred, their mean is near zero.
    assert (
        np.linalg.norm(out["centred"].mean(axis=0))
        < 0.2
        < np.linalg.norm((x / np.linalg.norm(x, axis=1)[:, None]).mean(axis=0))
    )
