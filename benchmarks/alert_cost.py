"""CPU cost of building one alert, per format, with and without suppression: side by side.

    python benchmarks/alert_cost.py --data ../shared/data/zeek/010-zeek-mixed.conn.log.labeled \
        --json out.json

Takes the log's records as the worker decodes them (labels stripped by the policy), makes every
one an alert (scores over the threshold, random contributions over 71 columns, as the Zeek
VAEGMM has), and times ``AlertPolicy.facts`` + ``render`` for each format, and the suppression
step (``AlertVolume.pass_batch``, per source address, 60 s) on top of native, in batches of
1,000, the formats interleaved per repeat.  Reports the median microseconds per alert over the
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
    p.add_argument("--json", default=None)
    args = p.parse_args()

    records = read_logs(args.data).records[: args.batch]
    n, width = len(records), 71
    rng = np.random.default_rng(0)
    scores = 1.0 + rng.exponential(4.0, n)
    X, contrib = rng.normal(size=(n, width)), rng.exponential(size=(n, width))
    origins = [Origin("zeek.conn", i % 3, i, 1_796_220_000_000 + i, None) for i in range(n)]
    names = tuple(f"f{i}" for i in range(width))
    schema = load_schema(args.schema)
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

    def build(fmt: str, suppress: bool) -> float:
        policy = policies[fmt]
        t0 = time.perf_counter()
        facts = policy.facts(origins, records, scores, X, contrib, 1_796_220_009_000)
        if suppress:
            volume = AlertVolume(60.0, ("source_ip",), "vaegmm")
            passed = volume.pass_batch(
                [((o.topic, o.partition), a) for o, a in zip(origins, facts)], {}
            )
            facts = passed.alerts
        for a in facts:
            policy.render(a)
            policy.headers(a)
        return (time.perf_counter() - t0) / n * 1e6

    variants = [(f, f, False) for f in FORMATS] + [("native+suppress", "native", True)]
    times: dict[str, list[float]] = {v: [] for v, _, _ in variants}
    for r in range(args.repeats):
        for name, fmt, suppress in variants[r % 4 :] + variants[: r % 4]:
            times[name].append(build(fmt, suppress))
    result = {
        "records": n,
        "schema": args.schema,
        "repeats": args.repeats,
        "alert_rate": args.alert_rate,
        "us_per_alert": {v: statistics.median(t) for v, t in times.items()},
        "runs_us_per_alert": times,
    }
    base = result["us_per_alert"]["native"]
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
