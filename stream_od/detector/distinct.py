"""Score each distinct row of a batch once: repeated records cost one pass of the networks.

Flow logs repeat themselves.  A scan or a SYN flood is thousands of connections that differ only
in fields that are not features (addresses, ``uid``, ``ts``): every unanswered SYN to port 445
is the same feature row.  On the Windows host's day of inbound scans (Zeek ``010``) about a
third of each 1,000-record micro-batch repeats a row earlier in it; on a quiet Linux host's
traffic almost none do (``benchmarks/distinct_rows.py``).  The storm is when a worker falls
behind, so that is when it pays to run the networks on the distinct rows only and copy their
scores and contributions to the repeats.

This is exact only because a record's score does not depend on the batch it is scored in
(:mod:`stream_od.detector.forward`: every sum is taken in a fixed order): the repeats get the
bits they would have had, the same bits as ``stream-od score`` gives them offline.

Finding the repeats must cost little next to the networks (1-2 µs a record).  Each row's bits
are hashed to one 64-bit integer (a sum of the words times fixed odd multipliers, modulo 2**64,
so vectorised and independent of the order of the sum).  A first look at the batch's first rows
gives up when they are mostly distinct, for about 0.02 µs a record; otherwise all the hashes are
sorted, and every row taken for a repeat is compared with its first occurrence, bit for bit, so
a hash collision costs the saving, never a wrong score: about 0.1 µs a record in all
(``np.unique(X, axis=0)`` takes 4 µs).
"""

from __future__ import annotations

import numpy as np

#: how a batch's repeated rows are scored: ``once`` (here) or ``each`` time, as they come
REPEATED = ("once", "each")

#: batches in which more than this share of the rows are distinct are scored whole: finding
#: the repeats, copying the distinct rows out and the results back cost about as much as
#: scoring a tenth to a fifth of the rows (``zeek-conn`` and ``kdd99`` models, batches of
#: 1,000 with a set share of repeats: break-even near 0.8)
MAX_DISTINCT_SHARE = 0.7

#: the first look: a batch in which more than ``SAMPLE_MAX_SHARE`` of the first
#: ``SAMPLE_ROWS`` rows are distinct is scored whole without hashing the rest (a quiet host's
#: traffic); looser than the batch's own limit, as a batch's first rows repeat less than it does
SAMPLE_ROWS = 256
SAMPLE_MAX_SHARE = 0.9

_MULTIPLIERS: dict[int, np.ndarray] = {}


def _multipliers(width: int) -> np.ndarray:
    """Fixed odd 64-bit multipliers, one per column (odd, so that a difference in one word
    alone always changes the hash)."""
    if width not in _MULTIPLIERS:
        rng = np.random.default_rng(0x5EED_0D)
        m = rng.integers(0, np.iinfo(np.uint64).max, size=width, dtype=np.uint64, endpoint=True)
        _MULTIPLIERS[width] = m | np.uint64(1)
    return _MULTIPLIERS[width]


def _hash(words: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    """Each row's words times the multipliers, summed modulo 2**64 (integers wrap): one 64-bit
    hash a row, in any order of the sum."""
    return np.einsum("ij,j->i", words, multipliers)


def _count_distinct(hashes: np.ndarray) -> int:
    ordered = np.sort(hashes)
    return 1 + int(np.count_nonzero(ordered[1:] != ordered[:-1]))


def distinct_rows(
    X: np.ndarray, max_share: float = MAX_DISTINCT_SHARE
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(first, inverse)`` such that ``X[first][inverse]`` is ``X`` bit for bit, ``first``
    the index of each distinct row's first occurrence; ``None`` when more
    than ``max_share`` of the rows are distinct (score the batch whole).

    Rows are compared by their bits: ``0.0`` and ``-0.0`` are different rows, and a NaN row
    repeats only a NaN row with the same bits.
    """
    n = X.shape[0]
    if n < 2 or X.ndim != 2:
        return None
    words = np.ascontiguousarray(X, dtype=np.float64).view(np.uint64)
    multipliers = _multipliers(words.shape[1])
    m = min(n, SAMPLE_ROWS)
    hashes = _hash(words[:m], multipliers)
    if _count_distinct(hashes) > max(max_share, SAMPLE_MAX_SHARE) * m:
        return None  # rows with distinct hashes are distinct
    if m < n:
        hashes = np.concatenate([hashes, _hash(words[m:], multipliers)])
    order = np.argsort(hashes, kind="stable")  # equal hashes keep their rows' order
    sorted_hashes = hashes[order]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(sorted_hashes[1:], sorted_hashes[:-1], out=starts[1:])
    if np.count_nonzero(starts) > max_share * n:
        return None  # rows with distinct hashes are distinct
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    first = order[starts]  # the first row of each hash, by the stable sort
    rep = first[inverse]
    repeats = np.flatnonzero(rep != np.arange(n))
    if not np.array_equal(words[repeats], words[rep[repeats]]):
        return None  # a hash collision: score the batch whole rather than trust it
    return first, inverse
