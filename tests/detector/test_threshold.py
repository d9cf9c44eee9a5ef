import numpy as np
import pytest

from stream_od.detector.threshold import flag_rate, percentile_threshold


def test_no_tie_equals_percentile():
    s = np.arange(1000, dtype=float)
    assert percentile_threshold(s, 95) == np.percentile(s, 95)
    assert percentile_threshold(s, 95, ties="strict") == np.percentile(s, 95)


def test_tie_block_straddling_the_percentile_is_flagged():
    # 930 distinct normal scores, a 40-copy duplicate block, 30 higher scores
    s = np.r_[np.linspace(0, 1, 930), np.full(40, 2.0), np.linspace(3, 4, 30)]
    assert np.percentile(s, 95) == 2.0
    strict = percentile_threshold(s, 95, ties="strict")
    incl = percentile_threshold(s, 95)
    assert not (2.0 > strict)  # the trap: every copy cleared
    assert 1.0 < incl < 2.0  # threshold lies in the gap below the block
    assert flag_rate(s, incl) == pytest.approx(0.07)


def test_all_equal_scores():
    s = np.ones(10)
    t = percentile_threshold(s, 50)
    assert t < 1.0 and flag_rate(s, t) == 1.0


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        percentile_threshold(np.array([np.nan, 1.0]), 95)
    with pytest.raises(ValueError):
        percentile_threshold(np.ones(3), 95, ties="nope")
