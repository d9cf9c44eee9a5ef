"""A neural detector's per-feature contributions (``|X - x_rec|``), the way before 2026-12-06
and the way now, side by side on one artifact and one log.

    python benchmarks/contributions.py --artifact DIR --data FILE [--json out.json]

Before: ``np.abs(X - x_rec.astype(np.float64))``, where ``x_rec`` is the numpy pass's transposed
view: ``astype`` copies it to a new array, the subtraction makes another, ``abs`` a third.  Now:
:func:`stream_od.detector._neural.reconstruction_errors`, the difference taken once and made
absolute in place.  Per batch size, the median over ``--repeats`` alternating runs of (a) the
step alone, on the batch's real reconstruction, in µs a record, and (b) the whole
``score_and_contributions`` the worker calls, in records/s; and whether the two ways give the
same bits (they must: the same elementwise operations).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from neural_bench import finish, heading, neural_artifact, parser, progress  # noqa: E402
from scoring_paths import rate, wire  # noqa: E402

from stream_od.detector import _neural  # noqa: E402

SHIPPED = _neural.reconstruction_errors


def before(X: np.ndarray, x_rec: np.ndarray) -> np.ndarray:
    """The expression the detector used until 2026-12-06."""
    return np.abs(X - x_rec.astype(np.float64))


WAYS = {"before": before, "now": SHIPPED}


def step_us(way, X: np.ndarray, x_rec: np.ndarray, seconds: float) -> float:
    """µs a record of ``way(X, x_rec)``, run for ``seconds``."""
    way(X, x_rec)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        way(X, x_rec)
        n += len(X)
    return (time.perf_counter() - start) / n * 1e6


def main(argv=None) -> int:
    p = parser(__doc__, batches=[100, 1_000, 10_000], repeats=7)
    p.add_argument("--seconds", type=float, default=0.5)
    args = p.parse_args(argv)

    from stream_od.records import RecordDecoder

    art = neural_artifact(p, args.artifact)
    detector = art.detector
    X_raw = RecordDecoder(art.schema).decode(wire(art, args.data, 100_000)).X
    X_raw = np.tile(X_raw, (-(-max(args.batches) // len(X_raw)), 1))

    rows = []
    for batch in args.batches:
        X = art._standardize(X_raw[:batch])
        _, x_rec = detector._forward_np(X)
        same = bool(np.array_equal(before(X, x_rec), SHIPPED(X, x_rec)))
        runs: dict[str, list[float]] = {f"{w}_{m}": [] for w in WAYS for m in ("step", "rows")}
        for r in range(args.repeats):
            for name in list(WAYS)[r % 2 :] + list(WAYS)[: r % 2]:
                _neural.reconstruction_errors = WAYS[name]
                try:
                    runs[f"{name}_step"].append(step_us(WAYS[name], X, x_rec, args.seconds))
                    runs[f"{name}_rows"].append(
                        rate(art.score_and_contributions, X_raw[:batch], args.seconds)
                    )
                finally:
                    _neural.reconstruction_errors = SHIPPED
        row = {
            "batch": batch,
            **{f"{k}_median": statistics.median(v) for k, v in runs.items()},
            "identical_bits": same,
            "runs": runs,
        }
        row["rows_ratio"] = row["now_rows_median"] / row["before_rows_median"]
        rows.append(row)
        progress(row)

    print(
        heading(art, X_raw.shape[1], args.repeats)
        + "| batch | contributions µs / record: before | now | score_and_contributions "
        "records/s: before | now | ratio | same bits |\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['batch']:,} | {r['before_step_median']:.3f} | {r['now_step_median']:.3f} | "
            f"{r['before_rows_median']:,.0f} | {r['now_rows_median']:,.0f} | "
            f"{r['rows_ratio']:.2f} | {r['identical_bits']} |"
        )
    return finish(args, art, X_raw.shape[1], rows, seconds=args.seconds)


if __name__ == "__main__":
    sys.exit(main())
