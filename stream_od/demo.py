"""``stream-od demo``: the whole job end to end on a local broker, then a short summary.

1. train a model quickly if the demo has none yet (``stream-od train``),
2. create this run's topics, start a worker (``stream-od worker``) and wait until it is ready,
3. replay a labelled stream (``stream-od replay``),
4. wait until the worker has committed every record, then grade the alerts against the labels
   carried in the input's headers, and read latency from the worker's Prometheus histogram,
5. stop the worker with SIGTERM and delete the run's topics.

Two streams:

* **KDD Cup '99** (the default): a VAEGMM trained on the reference protocol, and a sample of
  the same file with ``--attack-ratio`` percent attacks.
* **Sensor logs** (``--schema zeek-conn --data TRAIN_LOG... --replay-data TEST_LOG...``): a model
  trained on the site's traffic of ``--data`` at a 1 % target alert rate, then every record of
  ``--replay-data`` in event-time order, as a Zeek-to-Kafka pipeline would send it.  Records
  labelled benign/normal are normal, background/unknown ones are unlabelled (left out of
  precision and recall), any other label is an attack; recall is also given per detailed label.

Each step is the real command in its own process, as an operator would run it.  The broker must
be up (``make demo`` and ``make demo-zeek`` start and stop it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from stream_od.arg_types import percent, port, positive_int, records_per_second

DEFAULT_DATA = "data/kddcup.data_10_percent.gz"
# Shipped inside the package (stream_od/data/README.md): what the demo runs on when
# DEFAULT_DATA is absent, so a fresh clone without the download still runs end to end.
SAMPLE_DATA = "kdd_sample.csv.gz"


def default_kdd_data() -> str:
    """The full KDD file in data/ when it is there, else the packaged stratified sample."""
    if Path(DEFAULT_DATA).is_file():
        return DEFAULT_DATA
    from importlib import resources

    return str(resources.files("stream_od.data").joinpath(SAMPLE_DATA))


KDD_SCHEMAS = ("kdd99", "kdd99-full")
KDD_COUNT = 30_000
SENSOR_ALERT_RATE = "0.01"
SHORT_NAMES = {"zeek-conn": "zeek", "suricata-flow": "suricata"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run train -> stream -> alerts -> metrics end to end",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--schema",
        default=None,
        metavar="NAME|TOML",
        help="a sensor schema (zeek-conn, suricata-flow or a TOML file) for the sensor "
        "demo; default: the KDD demo",
    )
    p.add_argument(
        "--data",
        nargs="+",
        default=None,
        metavar="FILE",
        help=f"training data: the KDD Cup '99 file (default: {DEFAULT_DATA}, or the "
        "stratified sample inside the package when that is absent), or the sensor logs to "
        "train on",
    )
    p.add_argument(
        "--replay-data",
        nargs="+",
        default=None,
        metavar="FILE",
        help="what to replay: sensor logs (required with --schema); KDD: a file to "
        "sample from (default: --data)",
    )
    p.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    p.add_argument("--detector", default="vaegmm", choices=("vaegmm", "aegmm", "mahalanobis"))
    p.add_argument(
        "--artifact",
        default=None,
        help="use this artifact (default: artifacts/demo-<detector>, or "
        "artifacts/demo-zeek-<detector> for zeek-conn; trained if absent)",
    )
    p.add_argument(
        "--count",
        type=positive_int,
        default=None,
        help=f"records to replay (default: {KDD_COUNT:,} KDD records, every record "
        "of the sensor logs)",
    )
    p.add_argument("--rate", type=records_per_second, default=3_000.0, help="records per second")
    p.add_argument("--attack-ratio", type=percent, default=3.0, help="KDD: percent attacks")
    p.add_argument(
        "--metrics-port",
        type=port,
        default=9108,
        help="the worker's metrics port (a windows stage, for a schema with traffic "
        "windows, takes the next one)",
    )
    p.set_defaults(func=run)


def _say(msg: str) -> None:
    print(f"demo: {msg}", file=sys.stderr, flush=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stream_od.cli", *args]


# --- what to run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The demo's commands for one kind of stream: how to train, where the model lives, how to
    replay, and what to tell the user while it trains."""

    sensor: bool
    artifact: Path
    train: list[str]
    training_note: str
    replay: list[str]  # replay's arguments, less --topic and --bootstrap-servers
    replay_note: str
    schema: str | None = None
    inputs: list[str] = field(default_factory=list)  # files that must exist


def is_sensor(args: argparse.Namespace) -> bool:
    """The sensor demo runs for any schema but the KDD ones."""
    return args.schema is not None and args.schema not in KDD_SCHEMAS


def plan(args: argparse.Namespace) -> Plan:
    """The commands ``args`` ask for (raises ValueError on a missing sensor argument)."""
    return _sensor_plan(args) if is_sensor(args) else _kdd_plan(args)


def _kdd_plan(args: argparse.Namespace) -> Plan:
    data = args.data or [default_kdd_data()]
    replay_data = args.replay_data or data
    if len(data) != 1 or len(replay_data) != 1:
        raise ValueError("the KDD demo takes one --data file (and at most one --replay-data)")
    schema = ["--schema", args.schema] if args.schema else []
    suffix = f"{args.schema}-" if args.schema not in (None, "kdd99") else ""
    artifact = Path(args.artifact or f"artifacts/demo-{suffix}{args.detector}")
    quick = ["--epochs", "20"] if args.detector != "mahalanobis" else []
    count = args.count or KDD_COUNT
    return Plan(
        sensor=False,
        artifact=artifact,
        inputs=[*data, *replay_data],
        train=[
            "train",
            "--data",
            data[0],
            *schema,
            "--detector",
            args.detector,
            "--out",
            str(artifact),
            *quick,
        ],
        training_note=f"training a {args.detector} on the reference protocol's 400,000 normal "
        f"rows drawn from {Path(data[0]).name}"
        + (
            " (the packaged 50,242-row sample: the full file is not in data/)"
            if Path(data[0]).name == SAMPLE_DATA
            else ""
        )
        + " (20 epochs for a network, then its scoring mixture: about a minute)",
        replay=[
            "--data",
            replay_data[0],
            "--count",
            str(count),
            "--rate",
            str(args.rate),
            "--attack-ratio",
            str(args.attack_ratio),
            "--seed",
            "1",
        ],
        replay_note=f"{count:,} records ({args.attack_ratio}% attacks) at {args.rate:,.0f}/s",
    )


def _sensor_plan(args: argparse.Namespace) -> Plan:
    if not args.data or not args.replay_data:
        raise ValueError(
            f"--schema {args.schema} needs --data (the logs to train on) and "
            "--replay-data (the logs to replay)"
        )
    name = Path(args.schema).stem
    artifact = Path(
        args.artifact or f"artifacts/demo-{SHORT_NAMES.get(name, name)}-{args.detector}"
    )
    count = ["--count", str(args.count)] if args.count else []
    return Plan(
        sensor=True,
        artifact=artifact,
        schema=args.schema,
        inputs=[*args.data, *args.replay_data],
        train=[
            "train",
            "--data",
            *args.data,
            "--schema",
            args.schema,
            "--detector",
            args.detector,
            "--target-alert-rate",
            SENSOR_ALERT_RATE,
            "--out",
            str(artifact),
        ],
        training_note=f"training a {args.detector} on {', '.join(args.data)} at a "
        f"{float(SENSOR_ALERT_RATE):.0%} target alert rate",
        replay=[
            "--data",
            *args.replay_data,
            "--schema",
            args.schema,
            *count,
            "--rate",
            str(args.rate),
        ],
        replay_note=(f"the first {args.count:,} records" if args.count else "every record")
        + f" of {', '.join(args.replay_data)} in event-time order at {args.rate:,.0f}/s",
    )


def schema_mismatch(artifact: Path, schema: str) -> str | None:
    """Why ``artifact`` cannot score records of ``schema`` (None when it can): a model trained
    on other records would dead-letter or misjudge the whole stream."""
    from stream_od.schema import load_schema

    try:
        info = json.loads((artifact / "artifact.json").read_text())
        trained = info["schema"]["name"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"cannot read the schema of {artifact} ({exc})"
    wanted = load_schema(schema).name
    if trained != wanted:
        return f"{artifact} was trained on schema {trained!r}, the replay is {wanted!r}"
    return None


# --- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from stream_od.kafka.topics import delete_topics, ensure_topics, missing_topics

    try:
        p = plan(args)
    except ValueError as exc:
        _say(str(exc))
        return 2
    absent = [f for f in p.inputs if not Path(f).is_file()]
    if absent:
        _say(_absent_message(p, absent))
        return 2
    client = {"bootstrap.servers": args.bootstrap_servers}
    try:
        missing_topics(client, [], timeout=5)
    except Exception as exc:
        _say(f"no Kafka at {args.bootstrap_servers} ({exc}); run `make kafka-up` first")
        return 2

    if not (p.artifact / "manifest.json").is_file():
        _say(f"no model at {p.artifact}: {p.training_note}")
        code = subprocess.run(_cli(*p.train)).returncode
        if code:
            _say(f"training failed (exit {code}): see its messages above")
            return code
    if p.sensor and p.schema is not None and (why := schema_mismatch(p.artifact, p.schema)):
        _say(f"{why}: pass another --artifact, or remove it to train one")
        return 2

    run_id = time.strftime("%Y%m%d%H%M%S")
    roles = _window_roles(p)
    names = ("connections", "alerts", "dead-letter") + (("by-responder",) if roles else ())
    topics = {name: f"stream-od.demo-{run_id}.{name}" for name in names}
    ensure_topics(
        client, {t: 1 if name in ("alerts", "dead-letter") else 3 for name, t in topics.items()}
    )
    env = {
        **os.environ,
        "STREAM_OD_BOOTSTRAP_SERVERS": args.bootstrap_servers,
        "STREAM_OD_INPUT_TOPIC": topics["connections"],
        "STREAM_OD_ALERTS_TOPIC": topics["alerts"],
        "STREAM_OD_DEAD_LETTER_TOPIC": topics["dead-letter"],
        "STREAM_OD_GROUP_ID": f"stream-od-demo-{run_id}",
        "STREAM_OD_INSTANCE_ID": f"demo-{run_id}",
        "STREAM_OD_ARTIFACT_PATH": str(p.artifact),
        "STREAM_OD_METRICS_HOST": "127.0.0.1",
        "STREAM_OD_METRICS_PORT": str(args.metrics_port),
    }
    metrics_url = f"http://127.0.0.1:{args.metrics_port}/metrics"
    stages: list[subprocess.Popen] = []
    replay = [*p.replay]
    if roles:  # two stages: the first role's windows, re-keyed by the second role's host
        first, second = roles
        stage_port = args.metrics_port + 1
        stage_env = {
            **env,
            "STREAM_OD_GROUP_ID": f"stream-od-demo-{run_id}-windows",
            "STREAM_OD_INSTANCE_ID": f"demo-{run_id}-windows",
            "STREAM_OD_WINDOWS_STAGE_TOPIC": topics["by-responder"],
            "STREAM_OD_WINDOWS_STAGE_ROLES": json.dumps([first.name]),
            "STREAM_OD_WINDOWS_STAGE_KEY": second.key,
            "STREAM_OD_METRICS_PORT": str(stage_port),
        }
        env = {
            **env,
            "STREAM_OD_INPUT_TOPIC": topics["by-responder"],
            "STREAM_OD_WINDOWS_CARRIED": json.dumps([first.name]),
        }
        stages.append(subprocess.Popen(_cli("worker"), env=stage_env))
        replay += ["--key-field", first.key]
    worker = subprocess.Popen(_cli("worker"), env=env)
    stages.append(worker)
    try:
        if roles:
            _wait_ready(stages[0], f"http://127.0.0.1:{stage_port}/readyz")
            _say(
                f"windows stage ready ({first.name} windows on {topics['connections']} keyed "
                f"by {first.key}, re-keyed by {second.key} into {topics['by-responder']})"
            )
        _wait_ready(worker, f"http://127.0.0.1:{args.metrics_port}/readyz")
        _say(f"worker ready; metrics at {metrics_url}; replaying {p.replay_note}")
        replayer = subprocess.Popen(
            _cli(
                "replay",
                *replay,
                "--topic",
                topics["connections"],
                "--bootstrap-servers",
                args.bootstrap_servers,
            )
        )
        warm = _after_warm_up(metrics_url, replayer, worker)
        if replayer.wait() != 0:
            raise SystemExit(f"demo: the replay failed (exit {replayer.returncode})")
        labels = _input_labels(args.bootstrap_servers, topics["connections"])
        if roles:  # the scoring stage reads the internal topic: grade by its coordinates
            _wait_for_total(
                f"http://127.0.0.1:{stage_port}/metrics",
                len(labels),
                stages[0],
                done_metric="stream_od_windows_stage_records_total",
            )
            labels = _input_labels(args.bootstrap_servers, topics["by-responder"], by_position=True)
        text = _wait_for_total(metrics_url, len(labels), worker)
        summary = _summarize(
            args.bootstrap_servers,
            topics,
            text,
            labels,
            sensor=p.sensor,
            by_position=bool(roles),
            warm=warm,
        )
    finally:
        for stage in stages:
            if stage.poll() is None:
                stage.send_signal(signal.SIGTERM)
                code = stage.wait(60)
                _say(f"{'worker' if stage is worker else 'windows stage'} stopped (exit {code})")
        delete_topics(client, topics.values())
    print(summary)
    return 0


def _window_roles(p: Plan) -> tuple | None:
    """The first two window roles of a sensor schema that has them (the demo then runs the
    two-stage pipeline of docs/windows.md), else None."""
    if not p.sensor or p.schema is None:
        return None
    from stream_od.schema import load_schema

    windows = load_schema(p.schema).windows
    return tuple(windows.roles[:2]) if windows is not None and len(windows.roles) >= 2 else None


def _absent_message(p: Plan, absent: list[str]) -> str:
    folders = [f for f in absent if Path(f).is_dir()]
    if folders:
        return f"{', '.join(folders)}: a directory; name the files in it"
    if p.sensor:
        return (
            f"sensor logs not found: {', '.join(absent)} (labelled Zeek conn logs: "
            "make demo-zeek ZEEK_DIR=DIR)"
        )
    return (
        f"KDD data not found at {', '.join(absent)}: download kddcup.data_10_percent.gz "
        "from the UCI KDD archive into data/, or pass --data PATH (make demo DATA=PATH)"
    )


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


#: seconds of scoring before the steady-state latency starts counting: the first batches after
#: assignment pay for coordinator look-ups, the first transactions and cold caches
WARM_UP_S = 3.0


def _after_warm_up(url: str, replayer: subprocess.Popen, worker: subprocess.Popen) -> str | None:
    """The worker's metrics ``WARM_UP_S`` after it scored its first record, while the replay
    still runs; None when the stream is over by then (too short for a steady state)."""
    first = None
    while replayer.poll() is None and worker.poll() is None:
        text = _scrape(url)
        if first is None and _value(text, "stream_od_records_scored_total") > 0:
            first = time.monotonic()
        if first is not None and time.monotonic() - first >= WARM_UP_S:
            return text
        time.sleep(0.1)
    return None


def _wait_for_total(
    url: str,
    count: int,
    worker: subprocess.Popen,
    timeout: float = 300.0,
    done_metric: str = "stream_od_records_scored_total",
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = _scrape(url)
        done = _value(text, done_metric) + _value(text, "stream_od_dead_letters_total")
        if done >= count:
            return text
        if worker.poll() is not None:
            raise SystemExit(f"demo: the worker exited with {worker.returncode}")
        time.sleep(0.5)
    raise SystemExit("demo: the worker did not finish the stream in time")


def histogram_quantile(text: str, name: str, q: float, since: str | None = None) -> float:
    """Prometheus' ``histogram_quantile`` over a scraped histogram; with ``since`` (an earlier
    scrape), over the observations made between the two."""
    import numpy as np

    from stream_od.metrics import bucket_quantile

    def buckets(scrape: str) -> list[tuple[float, float]]:
        return sorted(
            (float("inf") if le == "+Inf" else float(le), float(v))
            for le, v in re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', scrape, re.M)
        )

    now = buckets(text)
    counts = np.array([c for _, c in now])
    if since is not None:
        counts = counts - np.array([c for _, c in buckets(since)])
    return bucket_quantile(np.array([le for le, _ in now[:-1]]), counts, q)


# --- grading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    """What the replay said about one record, from its headers."""

    label: str
    detail: str = ""


def label_kind(label: str) -> str:
    """``"normal"``, ``"unlabelled"`` or ``"attack"``, as the trainer reads labels."""
    from stream_od import labels

    return {labels.NORMAL: "normal", labels.UNLABELLED: "unlabelled", labels.MALICIOUS: "attack"}[
        labels.label_kind(label)
    ]


@dataclass(frozen=True)
class Grade:
    """Alerts against the labels: unlabelled records count in neither precision nor recall."""

    attacks: int
    normal: int
    unlabelled: int
    alerts_graded: int  # alerts on labelled records
    caught: int
    by_type: dict[str, tuple[int, int]]  # type -> (caught, attacks of that type)

    @property
    def precision(self) -> float:
        return self.caught / self.alerts_graded if self.alerts_graded else float("nan")

    @property
    def recall(self) -> float:
        return self.caught / self.attacks if self.attacks else float("nan")


def grade(truth: dict[bytes, Truth], alerted: set[bytes], *, by_detail: bool) -> Grade:
    """Grade the alerted keys; attacks are grouped by detailed label (``by_detail``, falling
    back to the label where a record has none) or by label (KDD's label is the attack)."""
    kinds = {k: label_kind(t.label) for k, t in truth.items()}
    attacks = {k for k, kind in kinds.items() if kind == "attack"}
    graded = {k for k in alerted if kinds.get(k, "attack") != "unlabelled"}
    by_type: dict[str, tuple[int, int]] = {}
    for k in attacks:
        t = truth[k]
        name = (t.detail or t.label) if by_detail else t.label
        caught, total = by_type.get(name, (0, 0))
        by_type[name] = (caught + (k in alerted), total + 1)
    counts = list(kinds.values())
    return Grade(
        attacks=len(attacks),
        normal=counts.count("normal"),
        unlabelled=counts.count("unlabelled"),
        alerts_graded=len(graded),
        caught=len(alerted & attacks),
        by_type=by_type,
    )


def _input_labels(bootstrap: str, topic: str, by_position: bool = False) -> dict[bytes, Truth]:
    """Every replayed record's labels, read back from the input topic, by key (the replay's
    sequence number), or by position (``partition:offset``: a topic keyed by host)."""
    from stream_od.kafka.messages import (
        header_text,
        record_headers,
        record_offset,
        record_partition,
    )
    from stream_od.kafka.reader import read_to_end

    truth = {}
    for m in read_to_end(bootstrap, topic):
        headers = record_headers(m)
        where = _position(record_partition(m), record_offset(m)) if by_position else m.key()
        if where is None:  # the replay keys every record: a keyless one has no alert to match
            continue
        truth[where] = Truth(
            label=header_text(headers.get("label"), "?"),
            detail=header_text(headers.get("detailed_label"), ""),
        )
    return truth


def _position(partition: int, offset: int) -> bytes:
    return f"{partition}:{offset}".encode()


def _summarize(
    bootstrap: str,
    topics: dict[str, str],
    text: str,
    truth: dict[bytes, Truth],
    *,
    sensor: bool,
    by_position: bool = False,
    warm: str | None = None,
) -> str:
    import orjson

    from stream_od.kafka.messages import record_value
    from stream_od.kafka.reader import read_to_end

    alerts = read_to_end(bootstrap, topics["alerts"])
    dead = read_to_end(bootstrap, topics["dead-letter"])
    if by_position:
        sources = [orjson.loads(record_value(m))["kafka"] for m in alerts]
        alerted = {_position(src["partition"], src["offset"]) for src in sources}
    else:
        # An alert of a keyless record has no key, and no truth to be graded against.
        alerted = {key for m in alerts if (key := m.key()) is not None}
    g = grade(truth, alerted, by_detail=sensor)
    version = orjson.loads(record_value(alerts[0]))["model_version"] if alerts else "?"
    name = "stream_od_end_to_end_latency_seconds"
    lat = {q: 1000 * histogram_quantile(text, name, q) for q in (0.5, 0.95, 0.99)}
    if warm is not None:
        after = [1000 * histogram_quantile(text, name, q, since=warm) for q in (0.5, 0.95, 0.99)]
        steady = (
            " / ".join(f"{v:.0f}" for v in after)
            + f" ms (records scored after the first {WARM_UP_S:.0f} s)"
        )
    else:
        steady = "- (the stream ended within the warm-up)"
    rows = [
        ("model", version),
        ("records scored", f"{_value(text, 'stream_od_records_scored_total'):,.0f}"),
        ("dead letters", f"{len(dead):,}"),
        (
            "attacks in the stream",
            f"{g.attacks:,}"
            + (
                f" (benign {g.normal:,}; unlabelled {g.unlabelled:,}, not graded)" if sensor else ""
            ),
        ),
        ("alerts", f"{len(alerts):,}"),
        ("alert precision", f"{g.precision:.3f}"),
        ("alert recall", f"{g.recall:.3f}"),
        _by_type_row(g, sensor),
        (
            "end-to-end latency p50 / p95 / p99",
            f"{lat[0.5]:.0f} / {lat[0.95]:.0f} / {lat[0.99]:.0f} ms (whole run, from the "
            "histogram buckets)",
        ),
        ("  steady state", steady),
        ("transactions aborted", f"{_value(text, 'stream_od_transaction_aborts_total'):.0f}"),
    ]
    if sensor:
        rows.append(("values unseen in training", _unseen(text)))
        rows.append(("fields the records lacked", _lacked(text)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(
        ["", "stream-od demo summary", "-" * 22, *(f"{k:<{width}}  {v}" for k, v in rows), ""]
    )


def _unseen(text: str) -> str:
    """Per categorical field, the share of scored records with a value the model's training
    traffic did not have, beside that share on its held-out training rows: the drift the
    rule StreamOdUnseenTraffic watches."""
    return _against_training(
        text, "stream_od_unseen_category_records_total", "stream_od_model_unseen_category_share"
    )


def _lacked(text: str) -> str:
    """Per field with a "was missing" column, the share of scored records without it, beside
    that share on the model's held-out training rows (rule StreamOdFieldGone)."""
    return _against_training(
        text, "stream_od_missing_field_records_total", "stream_od_model_missing_field_share"
    )


def _against_training(text: str, live_metric: str, trained_metric: str) -> str:
    """``field live % (trained % in training)`` for each field either is not zero for."""
    scored = _value(text, "stream_od_records_scored_total")
    live = _by_field(text, live_metric)
    trained = _by_field(text, trained_metric)
    parts = [
        f"{name} {100 * count / scored:.1f} % ({100 * trained.get(name, 0.0):.1f} % in training)"
        for name, count in live.items()
        if scored and (count or trained.get(name))
    ]
    return "; ".join(parts) or "none"


def _by_field(text: str, name: str) -> dict[str, float]:
    return {
        field: float(v)
        for field, v in re.findall(rf'^{name}{{field="([^"]*)"}} (\S+)$', text, re.M)
    }


def _by_type_row(g: Grade, sensor: bool) -> tuple[str, str]:
    """Sensor logs: recall per detailed label; KDD (a score of attack types): the misses."""
    if sensor:
        return (
            "recall by detailed label",
            "; ".join(
                f"{name} {caught / total:.3f} ({caught:,} / {total:,})"
                for name, (caught, total) in sorted(g.by_type.items())
            )
            or "no attacks",
        )
    missed = {name: total - caught for name, (caught, total) in g.by_type.items() if total > caught}
    return (
        "missed attacks by type",
        ", ".join(f"{k} {v}" for k, v in sorted(missed.items())) or "none",
    )
