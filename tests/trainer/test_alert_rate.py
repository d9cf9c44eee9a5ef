"""trainer.alert_rate: the interval around an alert rate measured on few rows, checked against
closed forms and against simulation, not against its own formula."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.alert_rate import describe, rate_interval, rows_needed


def test_zero_of_n_has_the_closed_form_upper_end():
    # Clopper-Pearson with k = 0: the upper end solves (1 - p)^n = alpha / 2
    for n in (10, 210, 5000):
        lo, hi = rate_interval(0, n)
        assert lo == 0.0
        assert hi == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-9)


def test_n_of_n_mirrors_zero_of_n():
    lo, hi = rate_interval(30, 30)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 30), rel=1e-9)


def test_the_interval_covers_the_true_rate_of_a_threshold_set_on_few_rows():
    """The use it is put to: a cut at the 99th percentile of 210 normal scores, and the share
    of fresh normal scores above it.  The interval computed from the 210 rows must cover the
    true exceedance (known here: the scores are standard normal) at least 95 % of the time."""
    from scipy.stats import norm

    rng = np.random.default_rng(7)
    covered = 0
    trials = 2000
    for _ in range(trials):
        ref = rng.standard_normal(210)
        cut = np.percentile(ref, 99.0)
        lo, hi = rate_interval(int(np.sum(ref > cut)), ref.size)
        covered += lo <= norm.sf(cut) <= hi
    assert covered / trials >= 0.94  # exact intervals are conservative; Monte Carlo slack 0.01


def test_rows_needed_pins_the_rate_within_the_limit():
    n = rows_needed(0.01, 0.02)
    assert rate_interval(round(0.01 * n), n)[1] <= 0.02
    assert rate_interval(round(0.01 * (n // 2)), n // 2)[1] > 0.02
    assert rows_needed(0.001, 0.002) > 5 * n  # a rarer target needs proportionally more rows


@pytest.mark.parametrize("k, n", [(-1, 10), (11, 10), (0, 0)])
def test_impossible_counts_are_refused(k, n):
    with pytest.raises(ValueError):
        rate_interval(k, n)


def test_describe_reads_as_a_sentence_part():
    assert describe(3, 210) == "1.43 % (3 of 210 rows; 95 % interval 0.30-4.12 %)"
