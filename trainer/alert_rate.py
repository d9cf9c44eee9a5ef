"""How sure an alert rate measured on a few hundred normal rows is.

A site's threshold is the ``1 - target`` quantile of a few hundred normal rows' scores, and its
quality gate reads the alert rate of a few hundred more.  At a 1 % target, 210 threshold rows
put the cut between the second and third highest score: the share of tomorrow's normal traffic
above it is anywhere from a fraction of a percent to several percent, whatever the detector.
An operator should see that before trusting the number, and know how much traffic pins it.

Both parts read the same interval:

* the **validation** part: ``k`` of ``n`` held-out normal rows over the threshold is a binomial
  count; its exact (Clopper-Pearson) interval bounds the alert rate the model will have;
* the **threshold** part: with ``k`` of ``n`` reference scores above the cut, the probability
  mass above it is Beta-distributed for any continuous score distribution (order statistics),
  and the central interval of that Beta pair is the same Clopper-Pearson interval.

Scores with ties (duplicated flows) make the second reading approximate; the first stays exact.
"""

from __future__ import annotations

from scipy.stats import binomtest

CONFIDENCE = 0.95


def rate_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for a rate seen as ``k`` of ``n`` rows."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def rows_needed(target: float, limit: float, confidence: float = CONFIDENCE) -> int:
    """About the fewest rows on which a rate measured at ``target`` has its interval's upper
    end within ``limit`` (the quality gate's tolerance): how much normal traffic pins the rate.
    (The upper end shrinks with the rows up to the rounding of ``target * n``, so the search
    can land a few rows off the exact minimum.)"""
    if not 0.0 < target < limit < 1.0:
        raise ValueError(f"need 0 < target < limit < 1, got {target}, {limit}")

    def pinned(n: int) -> bool:
        return rate_interval(round(target * n), n, confidence)[1] <= limit

    hi = 16
    while not pinned(hi):
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if pinned(mid) else (mid, hi)
    return hi


def describe(k: int, n: int, confidence: float = CONFIDENCE) -> str:
    """``"1.4 % (3 of 210 rows; 95 % interval 0.3-4.1 %)"``."""
    lo, hi = rate_interval(k, n, confidence)
    return (
        f"{100 * k / n:.2f} % ({k:,} of {n:,} rows; {100 * confidence:.0f} % interval "
        f"{100 * lo:.2f}-{100 * hi:.2f} %)"
    )
