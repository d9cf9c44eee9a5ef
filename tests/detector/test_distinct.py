"""Finding a batch's repeated rows (stream_od.detector.distinct): exact, by the rows' bits, and
safe against a hash collision."""

from __future__ import annotations

import numpy as np
import pytest

from stream_od.detector import distinct
from stream_od.detector.distinct import distinct_rows


def _batch(seed: int = 0, n: int = 400, d: int = 7, kinds: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(kinds, d))
    return rows[rng.integers(0, kinds, n)]


def test_the_distinct_rows_rebuild_the_batch_bit_for_bit():
    X = _batch()
    first, inverse = distinct_rows(X)
    assert len(first) == len(np.unique(X, axis=0)) == 30
    assert np.array_equal(X[first][inverse].view(np.uint64), X.view(np.uint64))
    # each distinct row is taken at its first occurrence
    for i, row in enumerate(first):
        assert np.flatnonzero((X == X[row]).all(axis=1))[0] == row, i


def test_a_batch_of_mostly_distinct_rows_is_scored_whole():
    X = np.random.default_rng(1).normal(size=(100, 5))
    assert distinct_rows(X) is None
    X[:40] = X[40]  # 60 distinct of 100: under 0.7
    first, inverse = distinct_rows(X)
    assert len(first) == 60 and np.array_equal(X[first][inverse], X)
    assert distinct_rows(X, max_share=0.59) is None
    assert distinct_rows(X[:1]) is None


def test_rows_are_compared_by_their_bits():
    X = np.zeros((10, 3))
    X[5:, 1] = -0.0  # equal as numbers, not as bits: another row
    X[8:, 2] = np.nan
    first, inverse = distinct_rows(X, max_share=1.0)
    assert sorted(first.tolist()) == [0, 5, 8]
    assert np.array_equal(X[first][inverse].view(np.uint64), X.view(np.uint64))


def test_a_hash_collision_scores_the_batch_whole(monkeypatch):
    """With every multiplier 1 the hash is the rows' words summed, so a row and its columns
    swapped collide: the check of each repeat against its first row must catch it."""
    X = np.array([[1.0, 2.0], [2.0, 1.0]] * 10)
    monkeypatch.setattr(distinct, "_MULTIPLIERS", {2: np.ones(2, np.uint64)})
    assert distinct_rows(X) is None
    monkeypatch.setattr(distinct, "_MULTIPLIERS", {})
    first, _ = distinct_rows(X)
    assert sorted(first.tolist()) == [0, 1]


def test_float32_rows_are_compared_as_float64():
    X = _batch().astype(np.float32)
    first, inverse = distinct_rows(X)
    assert np.array_equal(X[first][inverse], X)


@pytest.mark.parametrize("shape", [(0, 4), (1, 4), (5,)])
def test_nothing_to_share_in_an_empty_a_single_or_a_flat_batch(shape):
    assert distinct_rows(np.zeros(shape)) is None


def test_the_first_look_gives_up_when_the_first_rows_are_distinct():
    rng = np.random.default_rng(2)
    m = distinct.SAMPLE_ROWS
    late_repeats = np.r_[rng.normal(size=(m, 3)), np.zeros((3 * m, 3))]  # 257 distinct of 1024
    assert distinct_rows(late_repeats) is None
    first, inverse = distinct_rows(late_repeats, max_share=1.0)
    assert len(first) == m + 1 and np.array_equal(late_repeats[first][inverse], late_repeats)
    early_repeats = late_repeats[::-1]
    first, inverse = distinct_rows(early_repeats)
    assert len(first) == m + 1 and np.array_equal(early_repeats[first][inverse], early_repeats)
