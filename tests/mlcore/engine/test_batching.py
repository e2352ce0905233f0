import random

from mlcore.engine.batching import MIN_TEXTS, PADDING_TOLERANCE, length_batches


def title_lengths(n: int, seed: int = 0) -> list[int]:
    """Token counts shaped like the bench catalog's titles: mostly 8-30, a long tail to 64."""
    rng = random.Random(seed)
    return [min(64, max(4, int(rng.lognormvariate(2.9, 0.35)))) for _ in range(n)]


def test_every_text_once_longest_first():
    lengths = title_lengths(2000)
    batches = list(length_batches(lengths, tokens=2048))
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(2000))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_each_batch_within_the_budget_and_padding_tolerance():
    lengths = title_lengths(2000)
    for batch in length_batches(lengths, tokens=2048):
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= 2048
        real = sum(lengths[i] for i in batch)
        assert len(batch) <= MIN_TEXTS or padded <= PADDING_TOLERANCE * real


def test_less_padding_than_fixed_batches_of_128():
    """What the batching is for: a re-scoring chunk of 2,000 titles wastes less on padding."""
    lengths = title_lengths(2000)
    ordered = sorted(lengths, reverse=True)
    fixed = sum(max(ordered[i : i + 128]) * len(ordered[i : i + 128]) for i in range(0, 2000, 128))
    budgeted = sum(len(b) * max(lengths[i] for i in b) for b in length_batches(lengths, tokens=2048))
    assert budgeted < fixed
    assert budgeted <= PADDING_TOLERANCE * sum(lengths) * 1.01


def test_a_text_longer_than_the_budget_is_a_batch_of_its_own():
    assert list(length_batches([100, 5, 5], tokens=50)) == [[0], [1, 2]]


def test_nothing_to_batch():
    assert list(length_batches([], tokens=2048)) == []
