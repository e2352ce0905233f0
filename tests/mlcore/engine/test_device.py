from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from mlcore.engine.device import run_batches


@pytest.fixture
def two_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_every_batch_runs_once_in_inference_mode_side_by_side(two_threads: None):
    seen: list[int] = []
    threads: set[str] = set()

    def work(batch: int) -> None:
        assert torch.is_inference_mode_enabled()  # thread-local: the pool thread must enter it itself
        assert torch.get_num_threads() == 1  # one batch per thread, each op single-threaded
        threads.add(threading.current_thread().name)
        seen.append(batch)

    run_batches(work, iter(range(50)), device="cpu")

    assert sorted(seen) == list(range(50))
    assert all(name.startswith("inference") for name in threads)
    assert torch.get_num_threads() == 2  # restored for whatever runs next (training, say)


def test_a_failing_batch_fails_the_call_and_restores_the_threads(two_threads: None):
    def work(batch: int) -> None:
        if batch == 7:
            raise ValueError("batch 7 is broken")

    with pytest.raises(ValueError, match="batch 7"):
        run_batches(work, range(20), device="cpu")
    assert torch.get_num_threads() == 2


def test_one_thread_runs_in_the_calling_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        names: list[str] = []
        run_batches(lambda batch: names.append(threading.current_thread().name), range(3), device="cpu")
        assert names == [threading.current_thread().name] * 3
    finally:
        torch.set_num_threads(before)


def test_embeddings_side_by_side_equal_one_at_a_time(tiny_encoder: Path, two_threads: None):
    from mlcore.engine.zeroshot import Encoder

    encoder = Encoder(tiny_encoder, device="cpu", max_length=16)
    texts = [f"product {i} {'with a longer title ' * (i % 4)}" for i in range(40)]
    side_by_side = encoder.embed(texts, batch_tokens=60)
    torch.set_num_threads(1)
    one_at_a_time = encoder.embed(texts, batch_tokens=60)

    np.testing.assert_allclose(side_by_side, one_at_a_time, atol=1e-5)
    assert np.abs(side_by_side).sum(axis=1).min() > 0  # every row was written
    assert encoder.embed([]).shape == (0, side_by_side.shape[1])
