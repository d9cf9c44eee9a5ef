"""Throughput of the two-stage windows pipeline, each stage against a passthrough, in one run.

    python benchmarks/windows_pipeline.py --json out.json [--artifact DIR] [--count 50000]
        [--repeats 3] [--data ../shared/data/zeek/010-zeek-mixed.conn.log.labeled]

Zeek records as the worker receives them (``benchmarks/stream_throughput.py``'s
``sensor_stream``: the log repeated in event-time order up to ``--count``) on a 3-partition
sensor topic keyed by originator address.  Per repeat, on the same records, each with its own
consumer group:

(a) passthrough of the sensor topic (consume, decode with the schema, produce every record,
    commit in one transaction; no windows, no model);
(b) the windows stage (``stream_od.worker.Worker`` with ``windows_stage_topic``): originator
    windows, the records written keyed by responder address to an internal topic;
(c) passthrough of that internal topic (its records are larger: they carry the windows);
(d) the scoring stage (``Worker`` with ``windows_carried=["src"]``): responder windows, score,
    alerts, commit;
(e) with ``--quix-python``: stage (b) written on Quix Streams (benchmarks/quix_windows_stage.py:
    per-key state in its RocksDB store, exactly-once), on the same sensor topic.

Reported: records per second of each (first consumed batch to last committed), medians over
the repeats, and the ratios (b)/(a) and (d)/(c), the issue's per-stage target being 0.7; and
the share of records the scoring stage alerted on (building an alert costs more than scoring).  The
artifact (``--artifact``, a ``zeek-conn-windows`` model) is by default a Mahalanobis trained here
on ``008``, so that the model's cost is small and the windows' cost shows; a VAEGMM adds its
forward pass to stage (d).  Broker, load and stages share this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.stream_throughput import (  # noqa: E402
    Passthrough,
    counter_total,
    sensor_stream,
    settings_for,
    timed,
    worker_progress,
)
from stream_od.artifact import Artifact  # noqa: E402
from stream_od.kafka.topics import ensure_topics  # noqa: E402
from stream_od.metrics import WorkerMetrics  # noqa: E402
from stream_od.worker import Worker  # noqa: E402
from trainer.replay import Encoded, produce  # noqa: E402

ZEEK = REPO.parent / "shared" / "data" / "zeek"


def train_default(workdir: Path) -> Artifact:
    from trainer.readers import read_logs
    from trainer.site import SiteConfig, train_site

    train = ZEEK / "008-zeek-mixed.conn.log.labeled"
    cfg = SiteConfig(data=[str(train)], schema="zeek-conn-windows", detector="mahalanobis")
    art = train_site(cfg, read_logs([train]).records, progress=False, log=lambda _: None)
    return Artifact.load(art.save(workdir / "zeek-windows"))


def quix_stage(args, sensor: str, name: str) -> float:
    """The same stage on Quix Streams (benchmarks/quix_windows_stage.py, run by
    ``--quix-python``, an interpreter with quixstreams installed); records per second."""
    output = f"bench-{name}-internal"
    ensure_topics({"bootstrap.servers": args.bootstrap}, {output: 3})
    done = subprocess.run(
        [
            args.quix_python,
            str(REPO / "benchmarks" / "quix_windows_stage.py"),
            "--bootstrap",
            args.bootstrap,
            "--input",
            sensor,
            "--output",
            output,
            "--count",
            str(args.count),
            "--group",
            f"bench-{name}",
            "--state-dir",
            tempfile.mkdtemp(prefix="quix_state_"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the Quix stage failed: {done.stderr[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["rps"])


def stage_progress(metrics: WorkerMetrics):
    """Records the stage passed on, from its own counter (not a scan of the registry, which
    slows the stage it measures: stream_throughput.worker_progress)."""

    def progress() -> int:
        return int(counter_total(metrics.windows_stage_records))

    return progress


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--artifact", help="a zeek-conn-windows artifact (default: train one)")
    p.add_argument("--data", nargs="+", default=[str(ZEEK / "010-zeek-mixed.conn.log.labeled")])
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--count", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", required=True)
    p.add_argument(
        "--quix-python",
        metavar="PYTHON",
        help="also run the windows stage on Quix Streams with this interpreter "
        "(one with quixstreams installed: python -m venv Q && Q/bin/pip "
        "install quixstreams)",
    )
    args = p.parse_args()

    artifact = (
        Artifact.load(args.artifact)
        if args.artifact
        else train_default(Path(tempfile.mkdtemp(prefix="windows_pipeline_")))
    )
    if artifact.schema.windows is None:
        raise SystemExit(f"{args.artifact}: the artifact's schema has no windows")
    run = uuid.uuid4().hex[:8]
    topics = {name: f"bench-{run}-{name}" for name in ("sensor", "alerts", "dlq", "out")}
    ensure_topics(
        {"bootstrap.servers": args.bootstrap},
        {topics["sensor"]: 3, topics["alerts"]: 1, topics["dlq"]: 1, topics["out"]: 3},
    )
    values = sensor_stream(args.data, artifact, args.count)
    stream = Encoded(values=values, labels=["-"] * len(values))
    print(f"producing {len(values):,} records keyed by originator ...", file=sys.stderr)
    produce(
        stream,
        topic=topics["sensor"],
        bootstrap_servers=args.bootstrap,
        key_field="id.orig_h",
    )

    rows = []
    for r in range(args.repeats):
        internal = f"bench-{run}-internal-{r}"
        ensure_topics({"bootstrap.servers": args.bootstrap}, {internal: 3})
        row: dict = {"repeat": r}
        sensor, boot = topics["sensor"], args.bootstrap
        loop = Passthrough(
            settings_for(boot, topics, f"{run}-pa-{r}", input_topic=sensor),
            artifact.schema,
            topics["out"],
        )
        row["passthrough_sensor_rps"] = timed(loop, lambda loop=loop: loop.done, args.count)
        m = WorkerMetrics()
        stage = Worker(
            settings_for(
                boot,
                topics,
                f"{run}-a-{r}",
                input_topic=sensor,
                windows_stage_topic=internal,
                windows_stage_roles=["src"],
            ),
            artifact,
            metrics=m,
        )
        row["windows_stage_rps"] = timed(stage, stage_progress(m), args.count)
        if args.quix_python:
            row["quix_windows_stage_rps"] = quix_stage(args, sensor, f"{run}-q-{r}")
            row["quix_windows_stage_ratio"] = (
                row["quix_windows_stage_rps"] / row["passthrough_sensor_rps"]
            )
        loop = Passthrough(
            settings_for(boot, topics, f"{run}-pb-{r}", input_topic=internal),
            artifact.schema,
            topics["out"],
        )
        row["passthrough_internal_rps"] = timed(loop, lambda loop=loop: loop.done, args.count)
        m = WorkerMetrics()
        scoring = Worker(
            settings_for(
                boot, topics, f"{run}-b-{r}", input_topic=internal, windows_carried=["src"]
            ),
            artifact,
            metrics=m,
        )
        row["scoring_stage_rps"] = timed(scoring, worker_progress(m), args.count)
        row["scoring_stage_alert_rate"] = counter_total(m.alerts) / args.count
        row["windows_stage_ratio"] = row["windows_stage_rps"] / row["passthrough_sensor_rps"]
        row["scoring_stage_ratio"] = row["scoring_stage_rps"] / row["passthrough_internal_rps"]
        rows.append(row)
        print(json.dumps({k: round(v, 3) for k, v in row.items()}), file=sys.stderr)

    keys = [k for k in rows[0] if k != "repeat"]
    result = {
        "schema": artifact.schema.name,
        "detector": artifact.detector_kind,
        "model_version": artifact.version,
        "data": [Path(d).name for d in args.data],
        "count": args.count,
        "repeats": args.repeats,
        **{k: statistics.median(row[k] for row in rows) for k in keys},
        "runs": rows,
    }
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n| {'median of ' + str(args.repeats):<44} | {'value':>10} |\n|{'-' * 46}|{'-' * 12}|")
    for key, label in (
        ("passthrough_sensor_rps", "passthrough of the sensor topic, rec/s"),
        ("windows_stage_rps", "windows stage, rec/s"),
        ("windows_stage_ratio", "windows stage / passthrough"),
        ("quix_windows_stage_rps", "the same stage on Quix Streams, rec/s"),
        ("quix_windows_stage_ratio", "Quix stage / passthrough"),
        ("passthrough_internal_rps", "passthrough of the internal topic, rec/s"),
        ("scoring_stage_rps", f"scoring stage ({artifact.detector_kind}), rec/s"),
        ("scoring_stage_ratio", "scoring stage / passthrough"),
        ("scoring_stage_alert_rate", "share of records alerted on"),
    ):
        if key not in result:
            continue
        v = result[key]
        print(
            f"| {label:<44} | {v:>10.2f} |"
            if "ratio" in key or "rate" in key
            else f"| {label:<44} | {v:>10,.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
