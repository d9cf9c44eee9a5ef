"""``stream-od demo``: the whole job end to end on a local broker, then a short summary.

1. train a model quickly if the demo has none yet (``stream-od train``),
2. create this run's topics, start a worker (``stream-od worker``) and wait until it is ready,
3. replay a labelled stream with a few percent attacks (``stream-od replay``),
4. wait until the worker has committed every record, then grade the alerts against the labels
   carried in the input's headers, and read latency from the worker's Prometheus histogram,
5. stop the worker with SIGTERM and delete the run's topics.

Each step is the real command in its own process, as an operator would run it.  The broker must
be up (``make demo`` starts and stops it).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DEFAULT_DATA = "data/kddcup.data_10_percent.gz"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run train -> stream -> alerts -> metrics end to end",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="KDD Cup '99 file (default: %(default)s)")
    p.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    p.add_argument("--detector", default="vaegmm", choices=("vaegmm", "aegmm", "mahalanobis"))
    p.add_argument("--artifact", default=None,
                   help="use this artifact (default: artifacts/demo-<detector>, trained if absent)")
    p.add_argument("--count", type=int, default=30_000, help="records to replay")
    p.add_argument("--rate", type=float, default=3_000.0, help="records per second")
    p.add_argument("--attack-ratio", type=float, default=3.0, help="percent attacks")
    p.add_argument("--metrics-port", type=int, default=9108)
    p.set_defaults(func=run)


def _say(msg: str) -> None:
    print(f"demo: {msg}", file=sys.stderr, flush=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stream_od.cli", *args]


def run(args: argparse.Namespace) -> int:
    from stream_od.kafka.topics import delete_topics, ensure_topics, missing_topics

    if not Path(args.data).is_file():
        _say(f"KDD data not found at {args.data}: download kddcup.data_10_percent.gz from the "
             "UCI KDD archive into data/, or pass --data PATH (make demo DATA=PATH)")
        return 2
    client = {"bootstrap.servers": args.bootstrap_servers}
    try:
        missing_topics(client, [], timeout=5)
    except Exception as exc:  # noqa: BLE001 - say what to do, whatever the client raised
        _say(f"no Kafka at {args.bootstrap_servers} ({exc}); run `make kafka-up` first")
        return 2

    artifact = Path(args.artifact or f"artifacts/demo-{args.detector}")
    if not (artifact / "manifest.json").is_file():
        _say(f"no model at {artifact}: training a {args.detector} on the reference protocol's "
             "400,000 normal rows (20 epochs for a network, then its scoring mixture: about a "
             "minute)")
        quick = ["--epochs", "20"] if args.detector != "mahalanobis" else []
        subprocess.run(_cli("train", "--data", args.data, "--detector", args.detector,
                            "--out", str(artifact), *quick), check=True)

    run_id = time.strftime("%Y%m%d%H%M%S")
    topics = {name: f"stream-od.demo-{run_id}.{name}" for name in
              ("connections", "alerts", "dead-letter")}
    ensure_topics(client, {topics["connections"]: 3, topics["alerts"]: 1,
                           topics["dead-letter"]: 1})
    env = {**os.environ,
           "STREAM_OD_BOOTSTRAP_SERVERS": args.bootstrap_servers,
           "STREAM_OD_INPUT_TOPIC": topics["connections"],
           "STREAM_OD_ALERTS_TOPIC": topics["alerts"],
           "STREAM_OD_DEAD_LETTER_TOPIC": topics["dead-letter"],
           "STREAM_OD_GROUP_ID": f"stream-od-demo-{run_id}",
           "STREAM_OD_INSTANCE_ID": f"demo-{run_id}",
           "STREAM_OD_ARTIFACT_PATH": str(artifact),
           "STREAM_OD_METRICS_HOST": "127.0.0.1",
           "STREAM_OD_METRICS_PORT": str(args.metrics_port)}
    metrics_url = f"http://127.0.0.1:{args.metrics_port}/metrics"
    worker = subprocess.Popen(_cli("worker"), env=env)
    try:
        _wait_ready(worker, f"http://127.0.0.1:{args.metrics_port}/readyz")
        _say(f"worker ready; metrics at {metrics_url}; replaying {args.count:,} records "
             f"({args.attack_ratio}% attacks) at {args.rate:,.0f}/s")
        subprocess.run(_cli("replay", "--data", args.data, "--topic", topics["connections"],
                            "--bootstrap-servers", args.bootstrap_servers,
                            "--count", str(args.count), "--rate", str(args.rate),
                            "--attack-ratio", str(args.attack_ratio), "--seed", "1"),
                       check=True)
        text = _wait_for_total(metrics_url, args.count, worker)
        summary = _summarize(args.bootstrap_servers, topics, text)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(60)
            _say(f"worker stopped (exit {code})")
        delete_topics(client, topics.values())
    print(summary)
    return 0


def _wait_ready(worker: subprocess.Popen, url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"demo: the worker exited with {worker.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("demo: the worker did not become ready")


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def _value(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def _wait_for_total(url: str, count: int, worker: subprocess.Popen, timeout: float = 300.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = _scrape(url)
        done = (_value(text, "stream_od_records_scored_total")
                + _value(text, "stream_od_dead_letters_total"))
        if done >= count:
            return text
        if worker.poll() is not None:
            raise SystemExit(f"demo: the worker exited with {worker.returncode}")
        time.sleep(0.5)
    raise SystemExit("demo: the worker did not finish the stream in time")


def histogram_quantile(text: str, name: str, q: float) -> float:
    """Prometheus' ``histogram_quantile`` over a scraped histogram."""
    import numpy as np

    from stream_od.metrics import bucket_quantile

    buckets = sorted((float("inf") if le == "+Inf" else float(le), float(v)) for le, v in
                     re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M))
    upper = np.array([le for le, _ in buckets[:-1]])
    return bucket_quantile(upper, np.array([c for _, c in buckets]), q)


def _summarize(bootstrap: str, topics: dict[str, str], text: str) -> str:
    import orjson

    from stream_od.kafka.reader import read_to_end

    labels = {m.key(): dict(m.headers() or []).get("label", b"?").decode()
              for m in read_to_end(bootstrap, topics["connections"])}
    alerts = read_to_end(bootstrap, topics["alerts"])
    dead = read_to_end(bootstrap, topics["dead-letter"])
    alerted = {m.key() for m in alerts}
    attacks = {k for k, lbl in labels.items() if lbl != "normal"}
    tp = len(alerted & attacks)
    precision = tp / len(alerted) if alerted else float("nan")
    recall = tp / len(attacks) if attacks else float("nan")
    by_type: dict[str, int] = {}
    for k in attacks - alerted:
        by_type[labels[k]] = by_type.get(labels[k], 0) + 1
    version = orjson.loads(alerts[0].value())["model_version"] if alerts else "?"
    lat = {q: 1000 * histogram_quantile(text, "stream_od_end_to_end_latency_seconds", q)
           for q in (0.5, 0.95, 0.99)}
    rows = [
        ("model", version),
        ("records scored", f"{_value(text, 'stream_od_records_scored_total'):,.0f}"),
        ("dead letters", f"{len(dead):,}"),
        ("attacks in the stream", f"{len(attacks):,}"),
        ("alerts", f"{len(alerts):,}"),
        ("alert precision", f"{precision:.3f}"),
        ("alert recall", f"{recall:.3f}"),
        ("missed attacks by type", ", ".join(f"{k} {v}" for k, v in sorted(by_type.items()))
         or "none"),
        ("end-to-end latency p50 / p95 / p99",
         f"{lat[0.5]:.0f} / {lat[0.95]:.0f} / {lat[0.99]:.0f} ms (from the histogram buckets)"),
        ("transactions aborted", f"{_value(text, 'stream_od_transaction_aborts_total'):.0f}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(["", "stream-od demo summary", "-" * 22,
                      *(f"{k:<{width}}  {v}" for k, v in rows), ""])
