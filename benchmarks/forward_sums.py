"""The numpy forward pass's exact sums, two ways side by side: numpy's ``einsum`` (what the
pass takes where it gives the defined bits, since 2026-12-06) and the elementwise definition
it is checked against (two numpy calls per input: :func:`stream_od.detector.forward.
ordered_sums`, and the reconstruction norms row after row), each at every batch size.

    python benchmarks/forward_sums.py --artifact DIR --data FILE [--json out.json]

Both round every product and add them in input order, so they give the same bits; the
benchmark checks that on every batch it times.  Per batch size it reports the scoring rows/s
(``score_and_contributions`` on encoded rows) and the worker's CPU-side stage (decode the wire
bytes, then score: ``benchmarks/scoring_paths.py``'s measure), each the median of
``--repeats`` alternating runs of ``--seconds``.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from neural_bench import finish, heading, neural_artifact, parser, progress  # noqa: E402
from scoring_paths import rate, stage_rate, wire  # noqa: E402

from stream_od.detector import forward  # noqa: E402

PROBES = ("einsum_sums_in_order", "einsum_column_sums_in_order")
SHIPPED = {name: getattr(forward, name) for name in PROBES}
WAYS = ("elementwise", "einsum")


def take(way: str) -> None:
    """Make the forward pass sum ``way``: the elementwise way by answering its probes no."""
    for name in PROBES:
        setattr(forward, name, SHIPPED[name] if way == "einsum" else lambda *shape: False)


def main(argv=None) -> int:
    p = parser(__doc__, batches=[77, 128, 300, 1_000, 10_000], repeats=5)
    p.add_argument("--seconds", type=float, default=1.0)
    args = p.parse_args(argv)

    from stream_od.records import RecordDecoder

    art = neural_artifact(p, args.artifact)
    values = wire(art, args.data, 100_000)
    X = RecordDecoder(art.schema).decode(values).X
    X = np.tile(X, (-(-max(args.batches) // len(X)), 1))
    values = values * -(-2 * max(args.batches) // len(values))  # two batches at least

    rows = []
    for batch in args.batches:
        scores, runs = {}, {f"{w}_{m}": [] for w in WAYS for m in ("rows", "stage")}
        for r in range(args.repeats):
            for way in WAYS[r % 2 :] + WAYS[: r % 2]:
                take(way)
                scores[way] = art.score(X[:batch])
                runs[f"{way}_rows"].append(
                    rate(art.score_and_contributions, X[:batch], args.seconds)
                )
                runs[f"{way}_stage"].append(stage_rate(art, values, batch, args.seconds))
        row = {"batch": batch, **{f"{k}_per_s": statistics.median(v) for k, v in runs.items()}}
        row["identical_bits"] = bool(np.array_equal(scores["elementwise"], scores["einsum"]))
        row["rows_ratio"] = row["einsum_rows_per_s"] / row["elementwise_rows_per_s"]
        row["stage_ratio"] = row["einsum_stage_per_s"] / row["elementwise_stage_per_s"]
        row["runs"] = runs
        rows.append(row)
        progress(row)
    take("einsum")

    print(
        heading(art, X.shape[1], args.repeats)
        + "| batch | scoring rows/s: elementwise | einsum | ratio | worker's stage records/s: "
        "elementwise | einsum | ratio | same bits |\n|---|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['batch']:,} | {r['elementwise_rows_per_s']:,.0f} | "
            f"{r['einsum_rows_per_s']:,.0f} | {r['rows_ratio']:.2f} | "
            f"{r['elementwise_stage_per_s']:,.0f} | {r['einsum_stage_per_s']:,.0f} | "
            f"{r['stage_ratio']:.2f} | {r['identical_bits']} |"
        )
    in_order = bool(art.detector.networks_.check_sums())
    return finish(args, art, X.shape[1], rows, einsum_in_order=in_order, seconds=args.seconds)


if __name__ == "__main__":
    sys.exit(main())
