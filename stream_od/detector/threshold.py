"""Threshold policy: from reference scores to the cut ``score > threshold``.

Kept apart from the detectors so it can change without retraining.

Ties. Network traffic is full of exact duplicates (a flood is thousands of copies of one
record), so deterministic scores form point masses, and a percentile can land exactly
on one: ``np.percentile`` interpolates between two equal neighbours and returns the
duplicate's score itself.  A strict ``score > threshold`` then clears *every* copy,
although the reference batch ranks part of that mass inside its top ``100-p`` percent.

Rule ``"include"`` (the default): when the percentile equals an observed reference score,
the threshold moves down into the gap below that score, to the midpoint between it and
the next lower distinct reference score.  Every copy of the straddling record is then
flagged: identical records always get one decision, and that decision follows the
copies that the reference put in the alert tail.  When the percentile falls between two
distinct scores nothing changes.  The threshold therefore never sits on an observed
score, so last-bit differences between platforms cannot flip a duplicate.

Rule ``"strict"`` keeps the plain percentile (the reference implementation's behaviour).
The cost of ``"include"`` is visible on the reference batch: its flag rate can exceed
``100-p`` percent by the mass of the straddling record; ``flag_rate`` reports it.
"""

from __future__ import annotations

import numpy as np

TIE_RULES = ("include", "strict")


def percentile_threshold(scores: np.ndarray, percentile: float, *, ties: str = "include") -> float:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError("need at least one reference score")
    if not np.isfinite(scores).all():
        raise ValueError("reference scores contain NaN or infinity")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError("percentile must be in [0, 100]")
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    q = float(np.percentile(scores, percentile))
    if ties == "strict" or not np.any(scores == q):
        return q
    below = scores[scores < q]
    if below.size == 0:
        return float(np.nextafter(q, -np.inf))
    mid = 0.5 * (below.max() + q)
    return float(mid if mid < q else np.nextafter(q, -np.inf))


def flag_rate(scores: np.ndarray, threshold: float) -> float:
    """Fraction of ``scores`` strictly above ``threshold``."""
    return float(np.mean(np.asarray(scores) > threshold))
