"""The bounded sample ``stream-od train --max-rows`` trains on (trainer.sample): pure logic."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.sample import (
    ALL,
    CHUNK,
    NEWEST,
    UNIFORM,
    RowSample,
    _reservoir,
    chunks,
    sample_records,
)


def rows(n: int, *, seed: int = 0) -> list[dict]:
    """``n`` records in reading order whose times are not in order (as a Zeek log's, written
    when each connection ends), with ties, and a few without a time."""
    rng = np.random.default_rng(seed)
    times = rng.integers(0, n // 3 + 1, n).astype(float)
    return [{"i": i, "ts": None if i % 97 == 5 else float(t)} for i, t in enumerate(times)]


def key(record: dict) -> tuple[int, float]:  # trainer.readers.time_key's rule
    return (1, 0.0) if record["ts"] is None else (0, record["ts"])


def stable_sort(records: list[dict]) -> list[dict]:
    return sorted(records, key=key)


def test_every_record_is_kept_in_time_order_when_they_are_fewer_than_the_limit():
    data = rows(500)
    for size, newest in ((None, False), (500, False), (10_000, False), (500, True)):
        sample = sample_records(iter(data), size, key, newest=newest)
        assert sample.how == ALL and sample.seen == 500
        assert sample.records == stable_sort(data)  # ties in reading order, no time last


def test_a_uniform_sample_is_a_time_ordered_subset_of_the_given_size_and_reproducible():
    data = rows(3 * CHUNK + 123)  # past the chunks the random draws are made in
    sample = sample_records(iter(data), 1000, key, seed=3)
    assert sample.how == UNIFORM and sample.seen == len(data) and len(sample.records) == 1000
    positions = [r["i"] for r in sample.records]
    assert len(set(positions)) == 1000
    assert sample.records == stable_sort([data[i] for i in sorted(positions)])
    again = sample_records(iter(data), 1000, key, seed=3)
    other = sample_records(iter(data), 1000, key, seed=4)
    assert again.records == sample.records and other.records != sample.records
    assert sample.to_dict() == {"how": UNIFORM, "records": 1000, "of": len(data), "max_rows": 1000}


def test_every_record_has_the_same_chance_to_be_kept():
    """Inclusion counts over 3,000 seeds, each position ~ Binomial(3000, 10/40): mean 750,
    sd 23.7.  A reservoir that draws slot j from 0..i-1 instead of 0..i keeps the later
    records too often (record 10 by 100 counts more than record 39), outside these bounds."""
    n, k, trials = 40, 10, 3000
    data = [{"i": i, "ts": float(i)} for i in range(n)]
    counts = np.zeros(n)
    for seed in range(trials):
        for r in sample_records(iter(data), k, key, seed=seed).records:
            counts[r["i"]] += 1
    expected = trials * k / n
    sd = np.sqrt(trials * (k / n) * (1 - k / n))
    assert np.all(np.abs(counts - expected) < 4.5 * sd), counts
    # and across the whole: a chi-square of 39 degrees of freedom, far below its 0.1 % tail
    assert np.sum((counts - expected) ** 2 / (expected * (1 - k / n))) < 72.1


def test_newest_keeps_the_last_records_of_the_time_order():
    data = rows(2000, seed=1)
    sample = sample_records(iter(data), 300, key, newest=True)
    assert sample.how == NEWEST and sample.seen == 2000
    assert sample.records == stable_sort(data)[-300:]
    assert "the most recent of 300 of the 2,000 records" == sample.describe()


def test_a_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="--max-rows must be at least 1"):
        sample_records(iter(rows(10)), 0, key)


def test_chunks_cut_any_iterable_and_keep_the_remainder():
    assert [len(c) for c in chunks(iter(range(10)), 4)] == [4, 4, 2]
    assert list(chunks(iter([]), 4)) == []


@pytest.mark.parametrize("n", [40, 300, 5000])
def test_a_row_sample_keeps_the_rows_the_record_reservoir_keeps_whatever_the_chunks(n):
    """RowSample is Algorithm R as _reservoir draws it (the same seed keeps the same
    positions), with a slot drawn twice in one chunk holding the later row."""
    size, seed = 100, 7
    X = np.arange(n * 3, dtype=float).reshape(n, 3)
    positions = np.arange(n) * 10  # the caller's numbering
    expected = sorted(p for p, _ in _reservoir(range(n), size, seed)[0])
    sample = RowSample(size, seed=seed)
    rng = np.random.default_rng(1)
    start = 0
    while start < n:
        stop = min(n, start + int(rng.integers(1, 900)))
        sample.offer(X[start:stop], positions[start:stop])
        start = stop
    kept, rows = sample.result()
    assert kept.tolist() == [10 * p for p in expected]
    assert np.array_equal(rows, X[kept // 10])
