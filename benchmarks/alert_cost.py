"""CPU cost of building one alert, per format, with and without suppression: side by side.

    python benchmarks/alert_cost.py --data ../shared/data/zeek/010-zeek-mixed.conn.log.labeled \
        --json out.json

Takes the log's records as the worker decodes them (labels stripped by the policy), makes every
one an alert (scores over the threshold, random contributions over 71 columns, as the Zeek
VAEGMM has), and times ``AlertPolicy.facts`` + ``render`` for each format, and native with
suppression (per ``--suppress-by``, 60 s windows) two ways: as the worker does it since
2026-12-07, the batch's entities and event times read first and only the alerts that go out
built (``AlertVolume.admit_records`` + ``settle``), and as before, every alert built, then passed
through its partition's state (``PartitionSuppression.admit``); in batches of 1,000, the
variants interleaved per repeat.
``--event-rate R`` re-times the records as if the same traffic arrived at R records a second
(``ts`` = the first record's + i / R): the log's own times spread a day's records over a day,
where a window holds few of an entity's alerts.  Reports the median microseconds per alert over the
repeats, and what that costs per record at a given alert rate.  Complements
``benchmarks/stream_throughput.py --alert-formats``, which measures the same on the worker end to
end but on this noisy machine cannot resolve a few microseconds per alert.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stream_od.alerts import AlertPolicy, Origin  # noqa: E402
from stream_od.alerts.volume import AlertVolume  # noqa: E402
from stream_od.schema import load_schema  # noqa: E402
from trainer.readers import read_logs  # noqa: E402

FORMATS = ("native", "ecs", "ocsf")


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", nargs="+", required=True, help="Zeek conn logs")
    p.add_argument("--schema", default="zeek-conn")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument(
        "--alert-rate",
        type=float,
        default=0.09,
        help="for the per-record column (0.09: the Zeek VAEGMM's on 010)",
    )
    p.add_argument(
        "--event-rate",
        type=float,
        default=None,
        help="re-time the records to this many a second (default: the log's own times)",
    )
    p.add_argument(
        "--suppress-by",
        nargs="+",
        default=["source_ip"],
        help="the suppression entity of the +suppress variants (60 s windows)",
    )
    p.add_argument("--json", default=None)
    args = p.parse_args()

    records = read_logs(args.data).records[: args.batch]
    if args.event_rate:
        start = float(records[0]["ts"])
        records = [{**r, "ts": start + i / args.event_rate} for i, r in enumerate(records)]
    n, width = len(records), 71
    rng = np.random.default_rng(0)
    scores = 1.0 + rng.exponential(4.0, n)
    X, contrib = rng.normal(size=(n, width)), rng.exponential(size=(n, width))
    origins = [Origin("zeek.conn", i % 3, i, 1_796_220_000_000 + i, None) for i in range(n)]
    names = tuple(f"f{i}" for i in range(width))
    schema = load_schema(args.schema)
    by = tuple(args.suppress_by)
    policies = {
        f: AlertPolicy(
            feature_names=names,
            threshold=1.0,
            score_scale=1.0,
            model_version="m-1",
            detector="vaegmm",
            severity_margins=(0.5, 2.0, 8.0),
            top_k=3,
            schema=schema,
            alert_format=f,
        )
        for f in FORMATS
    }

    def build(fmt: str, suppress: str) -> float:
        policy = policies[fmt]
        t0 = time.perf_counter()
        if suppress == "before":  # what the worker does: only the alerts that go out are built
            volume = AlertVolume(60.0, by, "vaegmm")
            admitted = volume.admit_records(policy, policy.coordinates(origins), records, scores)
            e = admitted.emit
            facts = policy.facts(
                [origins[j] for j in e],
                [records[j] for j in e],
                scores[e],
                X[e],
                contrib[e],
                1_796_220_009_000,
            )
            facts = volume.settle(admitted, facts, {}).alerts
        else:
            facts = policy.facts(origins, records, scores, X, contrib, 1_796_220_009_000)
        if suppress == "after":  # every alert built, then passed (the worker before 2026-12-07)
            volume = AlertVolume(60.0, by, "vaegmm")
            facts = [
                a
                for o, a in zip(origins, facts)
                if volume.partition((o.topic, o.partition)).admit(a)[0]
            ]
        for a in facts:
            policy.render(a)
            policy.headers(a)
        return (time.perf_counter() - t0) / n * 1e6

    held = AlertVolume(60.0, by, "vaegmm").admit_records(
        policies["native"], AlertPolicy.coordinates(origins), records, scores
    )
    suppressed_share = held.suppressed / n
    variants = [(f, f, "") for f in FORMATS] + [
        ("native+suppress, built first", "native", "after"),
        ("native+suppress", "native", "before"),
    ]
    times: dict[str, list[float]] = {v: [] for v, _, _ in variants}
    for r in range(args.repeats):
        k = r % len(variants)
        for name, fmt, suppress in variants[k:] + variants[:k]:
            times[name].append(build(fmt, suppress))
    result = {
        "records": n,
        "schema": args.schema,
        "repeats": args.repeats,
        "alert_rate": args.alert_rate,
        "suppress_by": list(by),
        "suppressed_share": suppressed_share,
        "event_rate": args.event_rate,
        "us_per_alert": {v: statistics.median(t) for v, t in times.items()},
        "runs_us_per_alert": times,
    }
    base = result["us_per_alert"]["native"]
    print(f"suppression per {list(by)}, 60 s: {suppressed_share:.1%} of the alerts held back")
    print(
        f"| variant | µs per alert (median of {args.repeats}) | vs native | µs per record at "
        f"{args.alert_rate:.0%} alerts |\n|---|---|---|---|"
    )
    for v, us in result["us_per_alert"].items():
        print(f"| {v} | {us:.1f} | {us / base:.2f} | {us * args.alert_rate:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
