"""trainer.time_order: a log sorted by event time in runs spilled to files gives what sorting
it in memory gives: by key, ties in the order read, a record without a time last."""

from __future__ import annotations

import numpy as np
import pytest

from trainer import time_order
from trainer.time_order import in_key_order


def items(n: int, seed: int) -> list[tuple[tuple[int, float], bytes]]:
    """Keys with many ties and some records without a time; values of every length, 0 included."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        key = (1, 0.0) if rng.random() < 0.1 else (0, float(rng.integers(0, n // 4 + 1)) / 3)
        out.append(
            (key, bytes(rng.integers(0, 256, size=int(rng.integers(0, 40)), dtype=np.uint8)))
        )
    return out


@pytest.mark.parametrize("run", [1, 2, 7, 100, 1000, 5000])
def test_spilled_runs_merge_into_the_in_memory_order(run):
    given = items(1000, seed=run)
    expected = sorted(((k, i, v) for i, (k, v) in enumerate(given)), key=lambda t: t[:2])
    assert list(in_key_order(iter(given), run=run)) == expected


def test_one_run_writes_no_file_and_more_write_one_each(monkeypatch):
    spills = []
    real = time_order._spill
    monkeypatch.setattr(
        time_order, "_spill", lambda part, path: spills.append(len(part)) or real(part, path)
    )
    list(in_key_order(items(100, seed=1), run=100))
    assert spills == []
    list(in_key_order(items(250, seed=1), run=100))
    assert spills == [100, 100, 50]
    assert list(in_key_order([], run=10)) == []
