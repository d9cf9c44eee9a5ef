"""The numpy forward pass's two ways of summing a layer, side by side: forming every product
as one ``(in, out, n)`` array and reducing it (what every batch did before 2026-12-04), and
accumulating input after input (what batches of ``ACCUMULATE_FROM`` records and more do
since), each way at every batch size.

    python benchmarks/forward_sums.py --artifact DIR --data FILE [--json out.json]

Both round every product and add them in input order, so they give the same bits; the
benchmark checks that on every batch it times.  Per batch size it reports the scoring rows/s
(``score_and_contributions`` on encoded rows) and the worker's CPU-side stage (decode the wire
bytes, then score: ``benchmarks/scoring_paths.py``'s measure), each the median of
``--repeats`` alternating runs of ``--seconds``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from scoring_paths import rate, stage_rate, wire  # noqa: E402

from stream_od.detector import forward  # noqa: E402

SHIPPED = forward.ACCUMULATE_FROM
WAYS = {"reduced": 10**12, "accumulated": 2}  # each way at every batch size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--artifact", required=True, help="a neural artifact (VAEGMM or AEGMM)")
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--batches", nargs="+", type=int, default=[77, 128, 300, 1_000, 10_000])
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json")
    args = p.parse_args(argv)

    from stream_od.artifact import Artifact
    from stream_od.records import RecordDecoder

    art = Artifact.load(args.artifact)
    if not hasattr(art.detector, "networks_"):
        p.error(f"{art.detector_kind} has no networks: give a VAEGMM or AEGMM")
    values = wire(art, args.data, 100_000)
    X = RecordDecoder(art.schema).decode(values).X
    X = np.tile(X, (-(-max(args.batches) // len(X)), 1))
    values = values * -(-2 * max(args.batches) // len(values))  # two batches at least

    rows = []
    for batch in args.batches:
        scores, runs = {}, {f"{w}_{m}": [] for w in WAYS for m in ("rows", "stage")}
        for r in range(args.repeats):
            for way in list(WAYS)[r % 2 :] + list(WAYS)[: r % 2]:
                forward.ACCUMULATE_FROM = WAYS[way]
                scores[way] = art.score(X[:batch])
                runs[f"{way}_rows"].append(
                    rate(art.score_and_contributions, X[:batch], args.seconds)
                )
                runs[f"{way}_stage"].append(stage_rate(art, values, batch, args.seconds))
        row = {"batch": batch, **{f"{k}_per_s": statistics.median(v) for k, v in runs.items()}}
        row["identical_bits"] = bool(np.array_equal(scores["reduced"], scores["accumulated"]))
        row["rows_ratio"] = row["accumulated_rows_per_s"] / row["reduced_rows_per_s"]
        row["stage_ratio"] = row["accumulated_stage_per_s"] / row["reduced_stage_per_s"]
        row["runs"] = runs
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "runs"}), file=sys.stderr)
    forward.ACCUMULATE_FROM = SHIPPED

    print(
        f"\n{art.detector_kind}, {X.shape[1]} features; median of {args.repeats}\n"
        "| batch | scoring rows/s: reduced | accumulated | ratio | worker's stage records/s: "
        "reduced | accumulated | ratio | same bits |\n|---|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['batch']:,} | {r['reduced_rows_per_s']:,.0f} | "
            f"{r['accumulated_rows_per_s']:,.0f} | {r['rows_ratio']:.2f} | "
            f"{r['reduced_stage_per_s']:,.0f} | {r['accumulated_stage_per_s']:,.0f} | "
            f"{r['stage_ratio']:.2f} | {r['identical_bits']} |"
        )
    if args.json:
        out = {
            "artifact": art.version,
            "detector": art.detector_kind,
            "features": int(X.shape[1]),
            "accumulate_from_shipped": SHIPPED,
            "repeats": args.repeats,
            "seconds": args.seconds,
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if all(r["identical_bits"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
