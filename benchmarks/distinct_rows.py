"""Scoring a micro-batch's repeated rows once, against scoring every row, side by side.

    python benchmarks/distinct_rows.py --artifact DIR --data FILE [FILE ...] [--json out.json]

Each ``--data`` file is streamed as ``benchmarks/stream_throughput.py`` streams it (sensor logs:
their records as the worker receives them, in event-time order; the KDD file: its 5 %-attack
sample) and cut into consecutive micro-batches of each ``--batches`` size.  Per file and batch
size: the share of each batch's rows that are distinct (median and range: how much there is to
save), and the median over ``--repeats`` alternating runs of the worker's scoring call
(``Artifact.score_and_contributions``, standardizing included) over every batch, in µs a record,
with the batch's repeated rows scored ``once`` (the default) and ``each`` time, and the ratio of
the two paired per repeat.  The two ways must give the same bits (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from neural_bench import finish, heading, neural_artifact, parser, progress  # noqa: E402
from stream_throughput import stream_for  # noqa: E402

from stream_od.detector.distinct import REPEATED, distinct_rows  # noqa: E402


def score_all(art, batches: list[np.ndarray]) -> tuple[float, list]:
    """µs a record to score every batch, and the results."""
    start = time.perf_counter()
    out = [art.score_and_contributions(X) for X in batches]
    return (time.perf_counter() - start) / sum(len(X) for X in batches) * 1e6, out


def main(argv=None) -> int:
    p = parser(__doc__, batches=[300, 1_000], repeats=7)
    p.add_argument("--count", type=int, default=20_000, help="records a file (KDD: sampled)")
    args = p.parse_args(argv)

    from stream_od.records import RecordDecoder
    from trainer.readers import is_sensor_log

    art = neural_artifact(p, args.artifact)
    rows = []
    for path in args.data:
        source = argparse.Namespace(data=[path], sensor=is_sensor_log([path]))
        values = stream_for(source, art, args.count, seed=11).values
        X_raw = RecordDecoder(art.schema).decode(values).X
        for batch in args.batches:
            batches = [X_raw[s : s + batch] for s in range(0, len(X_raw) - batch + 1, batch)]
            shares = [
                len(d[0]) / batch if (d := distinct_rows(art._standardize(X), 1.0)) else 1.0
                for X in batches
            ]
            runs: dict[str, list[float]] = {way: [] for way in REPEATED}
            results = {}
            for r in range(args.repeats):
                for way in REPEATED[r % 2 :] + REPEATED[: r % 2]:
                    art.place_scoring("cpu", "exact", way)
                    us, results[way] = score_all(art, batches)
                    runs[way].append(us)
            art.place_scoring("cpu")
            same = all(
                np.array_equal(a, b)
                for x, y in zip(results["once"], results["each"], strict=True)
                for a, b in zip(x, y, strict=True)
            )
            row = {
                "data": Path(path).name,
                "records": len(X_raw),
                "batch": batch,
                "batches": len(batches),
                "distinct_share_median": statistics.median(shares),
                "distinct_share_min": min(shares),
                "distinct_share_max": max(shares),
                **{f"{way}_us_median": statistics.median(runs[way]) for way in REPEATED},
                "once_to_each": statistics.median(
                    o / e for o, e in zip(runs["once"], runs["each"], strict=True)
                ),
                "identical_bits": same,
                "runs": runs,
            }
            rows.append(row)
            progress(row)

    print(
        heading(art, X_raw.shape[1], args.repeats)
        + "| data | batch | distinct share: median (min-max) | µs / record: each | once | "
        "once / each | same bits |\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['data']} | {r['batch']:,} | {r['distinct_share_median']:.2f} "
            f"({r['distinct_share_min']:.2f}-{r['distinct_share_max']:.2f}) | "
            f"{r['each_us_median']:.2f} | {r['once_us_median']:.2f} | {r['once_to_each']:.2f} | "
            f"{r['identical_bits']} |"
        )
    return finish(args, art, X_raw.shape[1], rows)


if __name__ == "__main__":
    sys.exit(main())
