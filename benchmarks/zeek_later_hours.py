"""One capture, cut in time: train on its first hours, test on the hours after.  Does the alert
rate asked for at training hold on the same host's later traffic?

    python benchmarks/zeek_later_hours.py --json out.json [--plot out.png]
        [--data FILE ...] [--train-share 0.5] [--unlabelled]
        [--methods vaegmm aegmm mahalanobis iforest] [--seeds 0 1 2] [--quick]
        [--variant NAME KEY=VALUE ...]

The default capture is ``idps-ctu-sme-11-2023-02-20`` in ``../shared/data/zeek/``: a benign
Linux host over 17 hours (6,796 Benign rows, 328 Unknown), recorded by a Zeek that had no
``Site::local_nets`` (``local_orig``/``local_resp`` unset on every row), a control for the false
alert rate on a host other than the one ``benchmarks/zeek_real.py`` uses.

The records, in time order (``read_logs`` sorts them), are cut at ``--train-share`` of their
count: the earlier part trains exactly as ``zeek_real.py`` trains on a day (``train_site``:
the benign rows cut by time into 70 % fit, 15 % threshold, 15 % validation; the threshold at the
99th percentile of the threshold part's scores; ``iforest`` the same way), the later part is the
test.  Reported per method and seed: the later part's benign alert rate with its exact 95 %
interval (``trainer.alert_rate``), the same rate hour by hour (hours counted from the later
part's first record), and, where the later part has malicious rows, ROC AUC and recall.

``--unlabelled`` drops the label fields from the earlier part, so every row of it is taken as
normal, as on a site that has no labels (any malicious rows in it are trained on, as they would
be there); the later part keeps its labels for grading.

Nothing here is chosen on the later part: the methods run with the product's defaults.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.kdd_protocol import threads  # noqa: E402
from benchmarks.zeek_real import (  # noqa: E402
    ZEEK,
    add_variant_option,
    run_zeek,
    summary_table,
    unseen_table,
)
from stream_od.schema import load_schema  # noqa: E402
from trainer.readers import read_logs  # noqa: E402

CONTROL = ZEEK / "idps-ctu-sme-11-2023-02-20.conn.log.labeled"
COLUMNS = [
    ("test_alert_rate", "later alert"),
    ("test_alert_rate_hi", "95 % upper"),
    ("test_roc_auc", "later ROC"),
    ("test_recall", "later recall"),
    ("holdout_alert_rate", "valid. alert"),
    ("fit_seconds", "fit s"),
]


def cut(records: list[dict], share: float) -> tuple[list[dict], list[dict]]:
    """The first ``share`` of the records (they are in time order) and the rest."""
    if not 0.0 < share < 1.0:
        raise SystemExit(f"--train-share must be in (0, 1), got {share}")
    k = int(round(share * len(records)))
    return records[:k], records[k:]


def without_labels(records: list[dict], schema_name: str) -> list[dict]:
    labels = set(load_schema(schema_name).label_fields)
    return [{k: v for k, v in r.items() if k not in labels} for r in records]


def hour_table(rows: list[dict]) -> dict[str, dict[int, float]]:
    """Median over seeds of each method's benign alert rate in each hour of the later part."""
    out: dict[str, dict[int, float]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        per_hour: dict[int, list[float]] = {}
        for r in rows:
            if r["method"] == method:
                for h in r["test_alert_rate_by_hour"]:
                    per_hour.setdefault(h["hour"], []).append(h["alert_rate"])
        out[method] = {h: statistics.median(v) for h, v in sorted(per_hour.items())}
    return out


def rows_by_hour(rows: list[dict]) -> dict[int, int]:
    """Benign rows in each hour of the later part (the same for every method and seed)."""
    return {h["hour"]: h["n"] for h in rows[0]["test_alert_rate_by_hour"]} if rows else {}


def plot(
    hours: dict[str, dict[int, float]],
    counts: dict[int, int],
    target: float,
    title: str,
    path: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    # how many benign rows each hour has: a rate over 70 rows moves 1.4 % a row
    rows = ax.twinx()
    rows.bar(list(counts), list(counts.values()), color="0.85", width=0.6, zorder=0)
    rows.set_ylabel("benign rows in the hour (bars)")
    ax.set_zorder(rows.get_zorder() + 1)
    ax.patch.set_visible(False)
    for method, by_hour in hours.items():
        ax.plot(list(by_hour), [100 * v for v in by_hour.values()], marker="o", label=method)
    ax.axhline(100 * target, color="k", ls="--", label=f"target {100 * target:g} %")
    ax.axhline(200 * target, color="k", ls=":", label=f"tolerance {200 * target:g} %")
    ax.set_xlabel("hour of the later part")
    ax.set_ylabel("benign rows alerted (%), median of seeds")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--json", required=True, help="write the rows here")
    p.add_argument("--plot", help="a PNG of the benign alert rate hour by hour")
    p.add_argument("--data", nargs="+", default=[str(CONTROL)], help="one capture (its files)")
    p.add_argument("--train-share", type=float, default=0.5, help="the earlier part's share")
    p.add_argument("--unlabelled", action="store_true", help="train as if there were no labels")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="*", default=["vaegmm", "aegmm", "mahalanobis", "iforest"])
    p.add_argument("--schema", default="zeek-conn", help="built-in schema name or TOML path")
    p.add_argument("--target-alert-rate", type=float, default=0.01)
    p.add_argument("--quick", action="store_true", help="first seed only; networks 5 epochs")
    add_variant_option(p)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    records = read_logs(args.data).records
    earlier, later = cut(records, args.train_share)
    if args.unlabelled:
        earlier = without_labels(earlier, args.schema)
    # what run_zeek reads of zeek_real's options
    name = " ".join(pathlib.Path(d).name for d in args.data)
    args.train, args.test = f"{name} (first {args.train_share:.0%})", f"{name} (the rest)"
    args.holdout_only, args.min_count, args.mixture_sweep = False, None, None
    args.quick_epochs = 5
    if args.quick:
        args.seeds = args.seeds[:1]
    result = run_zeek(args, earlier, later)
    for r in result["rows"]:
        r["test_alert_rate_hi"] = r["test_alert_rate_interval"][1]
    hours = hour_table(result["rows"])
    out: dict[str, Any] = {
        "config": {k: v for k, v in vars(args).items()},
        "threads": threads(),
        "rows_earlier": len(earlier),
        "rows_later": len(later),
        "hours_later": {m: {str(h): v for h, v in t.items()} for m, t in hours.items()},
        **result,
    }
    pathlib.Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(
        f"\n{name}: train on the first {args.train_share:.0%} ({len(earlier):,} records"
        f"{', labels dropped' if args.unlabelled else ''}), test on the rest ({len(later):,}), "
        f"{args.target_alert_rate:.0%} alert target\n"
        + summary_table(result["rows"], COLUMNS)
        + "\n"
        + unseen_table(result["unseen_share"])
    )
    print("\nbenign alert rate by hour of the later part (median of seeds)")
    all_hours = sorted({h for t in hours.values() for h in t})
    counts = rows_by_hour(result["rows"])
    print(f"{'hour':12s} " + " ".join(f"{h:>6d}" for h in all_hours))
    print(f"{'benign rows':12s} " + " ".join(f"{counts.get(h, 0):>6d}" for h in all_hours))
    for method, t in hours.items():
        cells = " ".join(f"{100 * t[h]:5.1f}%" if h in t else f"{'-':>6s}" for h in all_hours)
        print(f"{method:12s} {cells}")
    if args.plot:
        plot(hours, counts, args.target_alert_rate, f"{name}: later hours", args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
