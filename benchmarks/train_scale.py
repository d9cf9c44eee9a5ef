"""Training on more logs than fit in memory: peak memory and time of ``stream-od train`` as the
logs grow, every record kept against ``--max-rows``, side by side.

    python benchmarks/train_scale.py --json out.json [--rows 300000 1000000 3000000]
        [--max-rows 0 1000000] [--epochs 1] [--data FILE ...] [--detector vaegmm] [--score]

A site's week of logs is made from a real capture (default: the benign host
``idps-ctu-sme-11-2023-02-20`` in ``../shared/data/zeek/``): its records, label fields dropped
(a site's logs have none), repeated with ``ts`` moved on by the capture's span each time, and
written as Zeek's JSON writer writes them, one file per ``--rows`` value.  For each file and
each ``--max-rows`` (0: every record, the trainer before 2026-12-07), ``stream-od train
--schema zeek-conn`` runs in its own process; reported: the wall time, the process' peak
resident memory (``wait4``'s ``ru_maxrss``), the records trained on, the threshold and the
held-out alert rate.  ``--epochs`` (default 1) keeps the runs short: memory does not grow with
the epochs, the time does (about linearly; the trainer prints its seconds per epoch, kept in
the JSON).  With ``--score``, ``stream-od score`` runs on each log too (with the model of the
last ``--max-rows``), its wall time and peak memory reported beside.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
from typing import Any

import orjson

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.child_runs import measured, run_child, score_child  # noqa: E402
from benchmarks.stream_throughput import sensor_records  # noqa: E402
from stream_od.schema import load_schema  # noqa: E402

DEFAULT_DATA = (
    ROOT.parent / "shared" / "data" / "zeek" / "idps-ctu-sme-11-2023-02-20.conn.log.labeled"
)


def write_week(paths: list[str], rows: int, path: pathlib.Path, *, labels: bool = False) -> None:
    """``rows`` records: the capture over and over, each pass moved on by its span, as Zeek's
    JSON writer writes them (the label fields dropped, a site's logs have none; kept with
    ``labels``, for ``evaluate``)."""
    with path.open("wb") as out:
        for record in sensor_records(paths, load_schema("zeek-conn"), rows, labels=labels):
            out.write(orjson.dumps(record) + b"\n")


def train_once(log: pathlib.Path, max_rows: int, args, workdir: pathlib.Path) -> dict[str, Any]:
    out = workdir / f"art-{log.stem}-{max_rows}"
    argv = [
        sys.executable,
        "-m",
        "stream_od.cli",
        "train",
        *("--data", str(log), "--schema", "zeek-conn", "--detector", args.detector),
        *("--out", str(out), "--max-rows", str(max_rows), "--quiet"),
        *(("--epochs", str(args.epochs)) if args.epochs else ()),
    ]
    code, wall, usage, stdout, stderr = run_child(argv, workdir)
    if code not in (0, 3):  # 3: the artifact is written, its quality gate failed
        raise SystemExit(f"train failed ({code}):\n{stderr[-3000:]}")
    artifact = json.loads((out / "artifact.json").read_text())
    result = json.loads(stdout.strip().splitlines()[-1])
    return {
        "artifact": str(out),
        **measured(wall, usage),
        "quality_gate_passed": code == 0,
        "training": artifact["training"]["sample"],
        "parts": artifact["training"]["rows"],
        "threshold": result["threshold"],
        "holdout_alert_rate": result["holdout"]["alert_rate"],
        "fit_seconds": result["fit_seconds"],
        "seconds_per_epoch": artifact["metrics"].get("seconds_per_epoch"),
        "read_line": next((x for x in stderr.splitlines() if "train: read" in x), ""),
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)], help="the capture to repeat")
    p.add_argument("--rows", nargs="+", type=int, default=[300_000, 1_000_000, 3_000_000])
    p.add_argument("--max-rows", nargs="+", type=int, default=[0, 1_000_000])
    p.add_argument("--epochs", type=int, default=1, help="0: the trainer's default")
    p.add_argument("--detector", default="vaegmm")
    p.add_argument(
        "--score",
        action="store_true",
        help="also run stream-od score on each log, with the model of its last --max-rows",
    )
    p.add_argument("--json", default=None)
    args = p.parse_args()

    runs, scores = [], []
    with tempfile.TemporaryDirectory(prefix="stream-od-train-scale-") as tmp:
        workdir = pathlib.Path(tmp)
        for rows in args.rows:
            log = workdir / f"week-{rows}.json"
            write_week(args.data, rows, log)
            print(f"{rows:,} records: {log.stat().st_size / 1e6:,.1f} MB", file=sys.stderr)
            for max_rows in args.max_rows:
                run = {
                    "rows": rows,
                    "max_rows": max_rows,
                    **train_once(log, max_rows, args, workdir),
                }
                runs.append(run)
                print(
                    f"  --max-rows {max_rows:,}: {run['wall_s']:.0f} s, "
                    f"peak {run['peak_rss_mb']:,.0f} MB",
                    file=sys.stderr,
                )
            if args.score:
                scored = {
                    "rows": rows,
                    **score_child(
                        log, pathlib.Path(runs[-1]["artifact"]), workdir / "scores.jsonl"
                    ),
                }
                scores.append(scored)
                print(
                    f"  score: {scored['wall_s']:.0f} s, peak {scored['peak_rss_mb']:,.0f} MB",
                    file=sys.stderr,
                )
            log.unlink()
    print(
        "| records in the logs | --max-rows | trained on | peak memory | wall | threshold | "
        "held-out alert rate |\n|---|---|---|---|---|---|---|"
    )
    for r in runs:
        limit = f"{r['max_rows']:,}" if r["max_rows"] else "all"
        print(
            f"| {r['rows']:,} | {limit} | {r['training']['records']:,} "
            f"({r['training']['how']}) | {r['peak_rss_mb']:,.0f} MB | {r['wall_s']:.0f} s | "
            f"{r['threshold']:.3f} | {100 * r['holdout_alert_rate']:.2f} % |"
        )
    if scores:
        print("\n| records in the logs | `score` peak memory | wall |\n|---|---|---|")
        for r in scores:
            print(f"| {r['rows']:,} | {r['peak_rss_mb']:,.0f} MB | {r['wall_s']:.1f} s |")
    if args.json:
        result = {
            "data": args.data,
            "epochs": args.epochs,
            "detector": args.detector,
            "runs": runs,
            "scores": scores,
        }
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
