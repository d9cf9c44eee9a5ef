"""A bounded sample of a site's logs, for training on more traffic than fits in memory.

A week of a busy site's conn logs is tens of millions of records; read whole into Python
dicts (about 1.4 KB each), it needs tens of gigabytes before training starts.  ``stream-od
train --max-rows N`` reads the logs one record at a time instead and keeps at most ``N`` of
them, so memory follows ``N``, not the logs:

* **uniform** (a schema without traffic windows): every record has the same chance to be
  kept, whatever file or hour it is in (reservoir sampling, Vitter's Algorithm R, seeded), so
  the sample holds the week's daily and weekly cycles in their proportions.  The kept records
  are then put in event-time order and split by time as the whole would be.
* **newest** (a schema with traffic windows): a window's features count a host's other records
  in the last seconds or minutes, and a sample that keeps one record in ten would count a
  tenth of them, which the worker, seeing all of them, never does.  So the ``N`` most recent
  records are kept, a contiguous stretch of traffic whose windows are whole (but for its first
  minutes, as for any training window).

Either way the result is what :func:`trainer.readers.read_logs` would give for the records
kept: sorted stably by event time, records without one last.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
Key = Callable[[dict], Any]

UNIFORM, NEWEST, ALL = "uniform", "newest", "all"
#: ``--max-rows``' default: ``train`` peaks at 4.1 GB with it, and trains a VAEGMM on it in six
#: and a half minutes on 2 cores (benchmarks/train_scale.py): under the 8 GiB of the trainer
#: Job in deploy/k8s
MAX_ROWS = 1_000_000
#: records taken from the reader at a time (the random draws are made per chunk, in numpy)
CHUNK = 8192


@dataclass(frozen=True)
class Sample:
    """The records kept, in event-time order, and how they were chosen."""

    records: list[dict]
    seen: int  # records offered
    how: str  # ALL (every record offered was kept), UNIFORM or NEWEST
    max_rows: int | None = None  # the most it could keep (None: no limit)

    def to_dict(self) -> dict[str, Any]:
        """What the artifact's training record says of the sample."""
        return {
            "how": self.how,
            "records": len(self.records),
            "of": self.seen,
            "max_rows": self.max_rows,
        }

    def describe(self) -> str:
        if self.how == ALL:
            return f"all {self.seen:,} records"
        what = "a uniform random sample" if self.how == UNIFORM else "the most recent"
        return f"{what} of {len(self.records):,} of the {self.seen:,} records"


def sample_records(
    records: Iterable[dict], size: int | None, key: Key, *, newest: bool = False, seed: int = 0
) -> Sample:
    """At most ``size`` of ``records`` (all of them when ``size`` is None), sorted by
    ``key`` (stable: records with equal keys stay in the order they came), chosen uniformly
    at random with ``seed``, or the ``size`` with the largest keys with ``newest``."""
    if size is not None and size < 1:
        raise ValueError(f"--max-rows must be at least 1, not {size}")
    if newest and size is not None:
        ordered, seen = _largest(records, size, key)
        how = NEWEST
    else:
        drawn, seen = _reservoir(records, size, seed)
        how = UNIFORM
        ordered = sorted(((key(r), i, r) for i, r in drawn), key=lambda t: t[:2])
    if len(ordered) == seen:
        how = ALL
    return Sample([r for *_, r in ordered], seen, how, size)


def _reservoir(
    records: Iterable[T], size: int | None, seed: int
) -> tuple[list[tuple[int, T]], int]:
    """Algorithm R: each of the records offered ends up kept with the same probability,
    ``size / seen``.  Record ``i`` (from 0), once the reservoir is full, replaces slot ``j``,
    drawn uniformly from ``0..i``, when ``j < size``.  The draws are made a chunk at a time
    (numpy's PCG64 with ``seed``), and the replacements applied in order.  Each kept record
    comes with its position, so that ties in event time keep the reading order."""
    if size is None:
        kept = list(enumerate(records))
        return kept, len(kept)
    kept = []
    rng = np.random.default_rng(seed)
    seen = 0
    for chunk in chunks(records, CHUNK):
        n = len(chunk)
        room = max(0, min(n, size - len(kept)))
        kept.extend(zip(range(seen, seen + room), chunk[:room]))
        if room < n:
            positions, slots = _replacements(rng, seen + room, n - room, size)
            for p, j in zip(positions.tolist(), slots.tolist()):
                kept[j] = (p, chunk[p - seen])
        seen += n
    return kept, seen


def _replacements(
    rng: np.random.Generator, first: int, n: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm R's draws for positions ``first .. first + n - 1`` offered to a full
    reservoir of ``size``: the positions that replace a slot, and those slots, in order."""
    positions = np.arange(first, first + n)
    slots = (rng.random(n) * (positions + 1)).astype(np.int64)
    taken = slots < size
    return positions[taken], slots[taken]


class RowSample:
    """A uniform sample of at most ``size`` rows of matrices offered a chunk at a time, each
    with a position of the caller's: :func:`_reservoir`'s draws (the same rows for the same
    ``seed``, whatever the chunks), with the rows copied into one array instead of kept as
    objects.  For what is plotted of more rows than a plot can show."""

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self._rows: np.ndarray | None = None
        self._positions = np.empty(size, dtype=np.int64)

    def offer(self, X: np.ndarray, positions: np.ndarray) -> None:
        """Offer the rows of ``X``, ``positions[i]`` being row ``i``'s."""
        n = len(X)
        if self._rows is None:
            self._rows = np.empty((self.size, X.shape[1]), dtype=X.dtype)
        filled = min(self.seen, self.size)
        room = max(0, min(n, self.size - filled))
        self._rows[filled : filled + room] = X[:room]
        self._positions[filled : filled + room] = positions[:room]
        if room < n:
            offered, slots = _replacements(self._rng, self.seen + room, n - room, self.size)
            # a slot drawn twice in the chunk keeps the later row, as if applied in order
            _, first_from_end = np.unique(slots[::-1], return_index=True)
            last = len(slots) - 1 - first_from_end
            rows = offered[last] - self.seen
            self._rows[slots[last]] = X[rows]
            self._positions[slots[last]] = positions[rows]
        self.seen += n

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The positions kept, in increasing order, and their rows."""
        kept = min(self.seen, self.size)
        order = np.argsort(self._positions[:kept], kind="stable")
        rows = self._rows[:kept][order] if self._rows is not None else np.empty((0, 0))
        return self._positions[:kept][order], rows


def _largest(
    records: Iterable[dict], size: int, key: Key
) -> tuple[list[tuple[Any, int, dict]], int]:
    """The ``size`` records with the largest ``(key, position)``, in that order: the last
    ``size`` of the stable sort of them all, kept in a heap of ``size``."""
    heap: list[tuple[Any, int, dict]] = []
    seen = 0
    for i, record in enumerate(records):
        item = (key(record), i, record)  # positions are unique: records are never compared
        if len(heap) < size:
            heapq.heappush(heap, item)
        elif item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)
        seen = i + 1
    return sorted(heap, key=lambda t: t[:2]), seen


def chunks(items: Iterable[T], n: int) -> Iterator[list[T]]:
    """``items`` in lists of ``n`` (the last one shorter)."""
    it = iter(items)
    while chunk := list(itertools.islice(it, n)):
        yield chunk
