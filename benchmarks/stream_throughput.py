"""Stream throughput and latency: the worker against a no-model passthrough, in one run.

    python benchmarks/stream_throughput.py --artifact DIR --data KDD.gz --json out.json
    python benchmarks/stream_throughput.py --artifact ZEEK_ARTIFACT \
        --data ../shared/data/zeek/010-zeek-mixed.conn.log.labeled --json out.json

``--data`` is the KDD file (records sampled with 5 % attacks, as ``stream-od replay`` does) or
sensor logs (Zeek conn logs, Suricata EVE: their records as the worker receives them, Zeek's
JSON without the label fields, repeated in event-time order up to ``--count``; with
``--event-rate R``, re-timed as the same traffic arriving at R records a second, so that
suppression's event-time windows see a storm as dense as the rate it is sent at); the artifact
must have been trained with the matching schema.

Measured on the same topic and the same records (a backlog of ``--count`` JSON records on a
3-partition topic, each side reading it with its own consumer group):

(a) passthrough: consume -> decode (the worker's decoder) -> produce every record -> commit the
    offsets in the same transaction; no model.  This machine's ceiling for the loop.
(b) the worker (``stream_od.worker.Worker``, exactly-once, its defaults) with the artifact,
    once per ``--alert-formats`` (native, ecs, ocsf), and with ``--suppress-window-s`` once more
    in the first format with suppression per ``--suppress-by`` (each on its own group, back to
    back in each repeat, in rotated order; ratios between them are paired per repeat).

Rates are records per second from the first consumed batch to the last committed one; the two
sides alternate ``--repeats`` times and the medians are reported. The passthrough runs before
the workers in even repeats and after them in odd ones (the ratio is also reported per order):
the broker is still writing out one arm's output when the next starts. Beside each rate, the
loop thread's own CPU time per record (``thread_time``), which leaves out the waits on the
broker and on the machine's other threads, and says how much of the gap is the worker's own work
(on these 2 shared cores it still spreads by about 10 % between repeats). Then, ``--repeats``
times, the worker's latency (record timestamp to commit, from its Prometheus histogram, as a
dashboard would show it) at each fixed offered rate of ``--rates`` (records/s, or ``half``: half
its median maximum), the load coming from one ``stream-od replay`` in a separate process; its
first 2 seconds of records are a warm-up that is not counted (steady state: a fresh producer's
first records reach the broker in a burst), and the medians of the percentiles are reported per
rate. ``--compare-separate-warmup`` adds an arm measured as before 2026-12-04, with a second,
fresh replay for the measured records, so its start-up burst is counted.
``--compare-batch-wait`` runs each latency repeat twice, back to back in alternating order: the
worker as it is, and with its former batching (the whole batching period waited after every
batch, on top of the batch's processing). ``--compare-overlap`` adds, in each repeat, the
passthrough and the worker with ``overlap_commits`` on (a commit runs while the next batch is
decoded; the worker does it only when behind), and an arm to each latency repeat (arms rotated,
so none always runs first). ``--compare-batch-wait-ms 40 60`` adds a latency arm per batching
period (``max_batch_wait_ms``), ``--compare-max-batch-records 4000`` one per micro-batch limit
(``max_batch_records``: how large a batch grows when the worker is behind).
``--compare-scoring-sums`` adds the worker with ``scoring_sums=blas`` (each layer summed by the
BLAS product instead of in a fixed order): a variant in each throughput repeat, an arm in each
latency repeat. ``--compare-repeated-rows`` adds the worker with ``scoring_repeated_rows=each``
(every row of a micro-batch scored, not each distinct row once), the same way.
``--suppress-window-s`` adds the suppressed worker as an arm in each latency repeat too
(the latency runs' records re-timed by ``--event-rate`` like the backlog's).
``--compare-producer retry.backoff.ms=1`` adds the worker with those producer settings on top
of its own: a variant in each throughput repeat and an arm in each latency repeat.
Each latency run also says how busy the worker's loop was (its batches' decode, score
and commit seconds over the wall time) and how many cores the worker's process, the replay and
the broker used meanwhile: on one machine they share its cores, and "half the maximum" is half
of what the worker does on a backlog with no load generator beside it. The input topic of the
latency runs uses LogAppendTime, so the clock starts when the broker has the record
(``--timestamp-type CreateTime`` starts it at the load generator's send). The broker, the load
and the worker share this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stream_od.artifact import Artifact  # noqa: E402
from stream_od.config import load_settings  # noqa: E402
from stream_od.kafka import clients  # noqa: E402
from stream_od.kafka.messages import next_offsets  # noqa: E402
from stream_od.kafka.topics import ensure_topics  # noqa: E402
from stream_od.metrics import WorkerMetrics  # noqa: E402
from stream_od.records import RecordDecoder  # noqa: E402
from stream_od.schema import FeatureSchema  # noqa: E402
from stream_od.worker import Worker  # noqa: E402
from trainer.replay import Encoded, produce, sample_stream  # noqa: E402

#: where the benchmark's workers score (--scoring-device): auto, cpu or gpu
SCORING_DEVICE = "auto"


class SettingArm(NamedTuple):
    """A ``--compare-*`` flag that runs the worker with one setting changed: a variant in each
    throughput repeat (``{format}+{suffix}``), its ratio to the passthrough paired per repeat
    (``ratio_{name}``), and an arm in each latency repeat (``name``)."""

    flag: str  # the flag's attribute in the parsed arguments
    suffix: str
    settings: dict[str, str]
    name: str
    ratio_label: str
    latency_label: str


SETTING_ARMS = (
    SettingArm(
        "compare_scoring_sums",
        "blas",
        {"scoring_sums": "blas"},
        "scoring_sums_blas",
        "worker, blas sums / passthrough",
        "scoring_sums blas",
    ),
    SettingArm(
        "compare_repeated_rows",
        "each",
        {"scoring_repeated_rows": "each"},
        "repeated_rows_each",
        "worker, each row / passthrough",
        "every repeated row scored",
    ),
)


def settings_for(
    bootstrap: str, topics: dict[str, str], group: str, *, input_topic: str | None = None, **extra
):
    """A benchmark worker's settings: ``topics["in"]`` (or ``input_topic``) in, the alerts and
    dead-letter topics out, its own group; ``extra`` are further settings."""
    return load_settings(
        bootstrap_servers=bootstrap,
        input_topic=input_topic or topics["in"],
        alerts_topic=topics["alerts"],
        dead_letter_topic=topics["dlq"],
        group_id=group,
        instance_id=group,
        metrics_port=0,
        **{"scoring_device": SCORING_DEVICE, **extra},
    )


class FixedWaitWorker(Worker):
    """The worker with its batching before 2026-12-03: the whole ``max_batch_wait_ms`` waited
    after every batch, on top of the batch's processing (``--compare-batch-wait``)."""

    def _batch_timeout(self, wait_s: float, taken: float) -> float:
        return wait_s


def worker_with(**update) -> type[Worker]:
    """The worker with ``update`` over its settings; a ``producer`` dict goes over its
    producer settings rather than replacing them (``--compare-overlap``,
    ``--compare-batch-wait-ms``, ``--compare-producer``)."""

    class Variant(Worker):
        def __init__(self, settings, *args, **kwargs):
            changes = dict(update)
            if "producer" in changes:
                changes["producer"] = {**settings.producer, **changes["producer"]}
            super().__init__(settings.model_copy(update=changes), *args, **kwargs)

    return Variant


def producer_pairs(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a librdkafka configuration."""
    config = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--compare-producer: {pair!r} is not KEY=VALUE")
        config[key] = value
    return config


class Passthrough:
    """The worker's loop without a model: every decoded record is produced transactionally.
    With ``overlap_commits``, every commit overlaps the next batch's decoding."""

    def __init__(self, settings, schema, out_topic: str):
        self.settings, self.out_topic = settings, out_topic
        self.decoder = RecordDecoder(schema)
        self.consumer = clients.make_consumer(settings)
        self.producer = clients.make_producer(settings)
        self.done = 0
        self.first_at: float | None = None
        self._stop = threading.Event()

    def run(self) -> None:
        s = self.settings
        self.producer.init_transactions(30)
        self.consumer.subscribe([s.input_topic])
        pool = ThreadPoolExecutor(1) if s.overlap_commits else None
        pending: tuple[Future, int] | None = None  # the commit in flight, its records
        try:
            while not self._stop.is_set():
                msgs = self.consumer.consume(s.max_batch_records, s.max_batch_wait_ms / 1000)
                if not msgs:
                    pending = self._settle(pending)
                    continue
                if self.first_at is None:
                    self.first_at = time.perf_counter()
                batch = self.decoder.decode([m.value() for m in msgs])
                pending = self._settle(pending)
                self.producer.begin_transaction()
                for i in batch.rows:
                    m = msgs[int(i)]
                    self.producer.produce(self.out_topic, m.value(), m.key())
                commit = (next_offsets(msgs), self.consumer.consumer_group_metadata())
                if pool is None:
                    self._commit(*commit)
                    self.done += len(msgs)
                else:
                    pending = (pool.submit(self._commit, *commit), len(msgs))
            self._settle(pending)
        finally:
            if pool is not None:
                pool.shutdown()
            self.consumer.close()

    def _commit(self, offsets, metadata) -> None:
        self.producer.send_offsets_to_transaction(offsets, metadata, 30)
        self.producer.commit_transaction(60)

    def _settle(self, pending: tuple[Future, int] | None) -> None:
        if pending is not None:
            pending[0].result()
            self.done += pending[1]

    def stop(self) -> None:
        self._stop.set()


def sensor_stream(
    paths: list[str], artifact: Artifact, count: int, event_rate: float | None = None
) -> list[bytes]:
    """:func:`sensor_records` as the worker receives them: their JSON."""
    from trainer.score import json_bytes

    # (orjson's own result would hold ~8 KB a record)
    return [json_bytes(r) for r in sensor_records(paths, artifact.schema, count, event_rate)]


def sensor_records(
    paths: list[str],
    schema: FeatureSchema,
    count: int,
    event_rate: float | None = None,
    *,
    labels: bool = False,
) -> Iterator[dict]:
    """``count`` records of the logs without ``schema``'s label fields (with them if
    ``labels``), in event-time order, repeated with its time field moved on by the logs' span on
    each pass (so the order holds); with ``event_rate``, re-timed as the same traffic arriving
    at that many records a second (record ``i``'s time is the first's + i / rate), as a site
    that busy would send it."""
    from trainer.readers import read_logs

    drop = set() if labels else set(schema.label_fields)
    records = [{k: v for k, v in r.items() if k not in drop} for r in read_logs(paths).records]
    field = schema.time_field
    stamps = [r[field] for r in records if isinstance(r.get(field), (int, float))]
    span = (max(stamps) - min(stamps) + 1.0) if stamps else 0.0
    for i in range(count):
        rec = records[i % len(records)]
        shift = span * (i // len(records))
        if event_rate and stamps:
            rec = {**rec, field: min(stamps) + i / event_rate}
        elif shift and isinstance(rec.get(field), (int, float)):
            rec = {**rec, field: rec[field] + shift}
        yield rec


def stream_for(args, artifact: Artifact, count: int, seed: int) -> Encoded:
    if args.sensor:
        values = sensor_stream(args.data, artifact, count, args.event_rate)
        return Encoded(values=values, labels=np.full(len(values), "-", dtype=object))
    return sample_stream(args.data[0], count=count, attack_ratio=5.0, seed=seed, fmt="json")


def timed(loop, progress, count: int, timeout: float = 600.0, stats: dict | None = None) -> float:
    """Run ``loop`` in a thread until ``progress()`` reaches ``count``; records per second.
    ``stats`` gets ``cpu_us_per_record``: the loop thread's own CPU time (``thread_time``,
    start to stop) per record it finished.  Unlike the rate, it leaves out the time the loop
    waits on the broker and on the other threads of this 2-core machine (librdkafka's threads
    are not in it, in either loop)."""
    cpu = [0.0]

    def run() -> None:
        t0 = time.thread_time()
        try:
            loop.run()
        finally:
            cpu[0] = time.thread_time() - t0

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    first = None
    deadline = time.monotonic() + timeout
    while True:
        done = progress()
        now = time.perf_counter()
        if first is None and done > 0:
            first = (now, done)
        if done >= count:
            break
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"stalled at {done}/{count}")
        time.sleep(0.01)
    loop.stop()
    thread.join(60)
    if stats is not None:
        stats["cpu_us_per_record"] = cpu[0] / max(progress(), 1) * 1e6
    t0, n0 = first
    return (count - n0) / max(now - t0, 1e-9)


def counter_total(counter) -> float:
    """A counter's value summed over its labels, read from that counter alone: a scan of the
    whole registry (``get_sample_value``) every few milliseconds held the GIL long enough to
    slow the worker it measures by a third on Zeek records."""
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


def worker_progress(metrics: WorkerMetrics):
    """Records the worker finished (scored or dead-lettered)."""

    def progress() -> int:
        return int(counter_total(metrics.records_scored) + counter_total(metrics.dead_letters))

    return progress


def broker_pid() -> int | None:
    """The local broker's process (``kafka.Kafka``), when exactly one runs."""
    out = subprocess.run(["pgrep", "-f", "kafka.Kafka"], capture_output=True, text=True).stdout
    pids = out.split()
    return int(pids[0]) if len(pids) == 1 else None


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (``/proc``; NaN when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def children_cpu_s() -> float:
    """CPU seconds of this process' finished children (the replays)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def latency_run(
    args, artifact: Artifact, rate: float, worker_class: type = Worker, separate_warmup=False
) -> dict:
    """One steady-state latency run at ``rate``.  ``separate_warmup``: the warm-up records come
    from a replay of their own and the measured ones from a second, fresh replay (how this
    benchmark measured before 2026-12-04), so the measurement includes a fresh load
    generator's first records (``--compare-separate-warmup``)."""
    run = uuid.uuid4().hex[:8]
    topics = {
        "in": f"bench-lat-{run}-in",
        "alerts": f"bench-lat-{run}-alerts",
        "dlq": f"bench-lat-{run}-dlq",
    }
    # The input topic stamps records when the broker appends them (LogAppendTime), so the
    # latency measured is the worker's, from "in Kafka" to "committed", not the load
    # generator's own queueing on this shared 2-core machine.
    ensure_topics(
        {"bootstrap.servers": args.bootstrap},
        {topics["in"]: 3},
        config={"message.timestamp.type": args.timestamp_type},
    )
    ensure_topics({"bootstrap.servers": args.bootstrap}, {topics["alerts"]: 1, topics["dlq"]: 1})
    metrics = WorkerMetrics()
    worker = worker_class(
        settings_for(
            args.bootstrap,
            topics,
            f"bench-lat-{run}",
            alert_format=args.alert_formats[0],
            suppression_changelog_topic=f"bench-lat-{run}-suppress",
        ),
        artifact,
        metrics=metrics,
    )
    tmp = tempfile.TemporaryDirectory(prefix="stream-od-bench-")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    progress = worker_progress(metrics)

    def replay(warm: int, count: int, seed: int, *, snapshot_at_start: bool = False) -> dict:
        """Offer ``warm + count`` records at ``rate`` from one replay and wait until the worker
        has them all.  Once the worker has taken the first ``warm`` (the warm-up: the first
        transactions of a fresh producer and group look up coordinators and register
        partitions, and a fresh load generator's first records reach the broker in a burst),
        the latency histogram and the stage totals are read, and the measurement runs from
        there to the last record: the seconds it took, and the CPU seconds the worker's process,
        the replay and the broker used in them.  ``snapshot_at_start``: the histogram and
        stage totals are read before the replay starts, and the clock starts at its first
        record."""
        if args.sensor:  # the logs, repeated to ``count`` records, as a Zeek JSON file
            path = Path(tmp.name) / f"stream-{seed}.json"
            stream = sensor_stream(args.data, artifact, warm + count, args.event_rate)
            path.write_bytes(b"\n".join(stream) + b"\n")
            data = [str(path), "--schema", artifact.schema.name]
        else:
            data = [args.data[0], "--seed", str(seed)]
        base, broker, children_before = progress(), broker_pid(), children_cpu_s()
        if snapshot_at_start:
            since, stages_before = metrics.end_to_end_latency.snapshot(), stage_totals(metrics)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stream_od.cli",
                "replay",
                "--data",
                *data,
                "--topic",
                topics["in"],
                "--bootstrap-servers",
                args.bootstrap,
                "--count",
                str(warm + count),
                "--rate",
                str(rate),
                "--quiet",
            ],
        )
        while progress() < base + max(warm, 1) and proc.poll() is None:
            time.sleep(0.002)
        start = time.monotonic()
        if not snapshot_at_start:
            since, stages_before = metrics.end_to_end_latency.snapshot(), stage_totals(metrics)
        cpu_start = (time.process_time(), process_cpu_s(proc.pid), process_cpu_s(broker))
        if proc.wait() != 0:
            raise subprocess.CalledProcessError(proc.returncode, proc.args)
        replay_cpu = children_cpu_s() - children_before  # the whole replay, start-up included
        deadline = time.monotonic() + 120
        while progress() < base + warm + count and time.monotonic() < deadline:
            time.sleep(0.005)
        return {
            "since": since,
            "stages_before": stages_before,
            "wall_s": time.monotonic() - start,
            "worker_cpu_s": time.process_time() - cpu_start[0],
            "replay_cpu_s": replay_cpu - cpu_start[1],
            "broker_cpu_s": process_cpu_s(broker) - cpu_start[2],
        }

    count = int(rate * args.latency_seconds)
    if separate_warmup:
        replay(int(rate * 2), 0, seed=4)
        flow = replay(0, count, seed=5, snapshot_at_start=True)
    else:
        flow = replay(int(rate * 2), count, seed=5)
    wall, since = flow["wall_s"], flow["since"]
    worker.stop()
    thread.join(60)
    tmp.cleanup()
    hist = metrics.end_to_end_latency
    stages = {k: v - flow["stages_before"][k] for k, v in stage_totals(metrics).items()}
    batches = max(stages.pop("batches"), 1.0)
    cores = {f"cpu_{k}_cores": flow[f"{k}_cpu_s"] / wall for k in ("worker", "replay", "broker")}
    # the share of the wall time the worker's loop spent in its batches' stages
    busy = {"loop_busy_share": sum(stages[k] for k in ("decode", "score", "commit")) / wall}
    return (
        {f"latency_p{int(q * 100)}_ms": 1000 * hist.quantile(q, since) for q in (0.5, 0.95, 0.99)}
        | {"offered_rps": rate, "latency_records": count, "latency_timestamps": args.timestamp_type}
        | {"batches": batches, "records_per_batch": stages.pop("records") / batches}
        | {f"mean_{k}_ms": 1000 * v / batches for k, v in stages.items()}
        | cores
        | busy
    )


def latency_medians(runs: list[dict]) -> dict[str, float]:
    """The medians over latency repeats of their percentiles and per-batch figures."""
    return {
        k: statistics.median(r[k] for r in runs)
        for k in runs[0]
        if k.startswith(("latency_p", "mean_", "cpu_", "loop_")) or k == "records_per_batch"
    }


def latency_row(label: str, r: dict) -> str:
    """One rate's line of the latency table (``r``: medians and the runs behind them)."""
    return (
        f"| {label} | {r['latency_p50_ms']:.0f} | {r['latency_p95_ms']:.0f} | "
        f"{r['latency_p99_ms']:.0f} | {len(r['latency_runs'])} | {r['records_per_batch']:.0f} | "
        f"{r['mean_decode_ms']:.1f}, {r['mean_score_ms']:.1f}, {r['mean_commit_ms']:.1f} | "
        f"{r['loop_busy_share']:.0%} | {r['cpu_worker_cores']:.2f}, {r['cpu_replay_cores']:.2f}, "
        f"{r['cpu_broker_cores']:.2f} |"
    )


def stage_totals(metrics: WorkerMetrics) -> dict[str, float]:
    """Seconds spent per batch stage, batches and records so far (the worker's histograms),
    to say where a latency run's time went."""
    get = metrics.registry.get_sample_value
    out = {
        stage: get("stream_od_batch_stage_seconds_sum", {"stage": stage}) or 0.0
        for stage in ("decode", "score", "commit")
    }
    out["batches"] = get("stream_od_batch_size_records_count") or 0.0
    out["records"] = get("stream_od_batch_size_records_sum") or 0.0
    return out


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--artifact", required=True, help="artifact directory the worker scores with")
    p.add_argument(
        "--data",
        nargs="+",
        default=[str(REPO.parent / "shared/data/kddcup.data_10_percent.gz")],
        help="the KDD file, or sensor logs (Zeek conn logs, Suricata EVE)",
    )
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latency-seconds", type=float, default=20.0)
    p.add_argument(
        "--latency-rate",
        type=float,
        default=None,
        help="offered rate for the latency run (the same as --rates RATE)",
    )
    p.add_argument(
        "--rates",
        nargs="+",
        default=["half"],
        metavar="RATE",
        help="offered rates for the latency runs, records/s, or 'half' (half the worker's "
        "maximum, measured in the same run); e.g. --rates 3000 half (default: half)",
    )
    p.add_argument("--only-latency", action="store_true", help="skip the throughput runs")
    p.add_argument("--skip-latency", action="store_true", help="skip the latency runs")
    p.add_argument(
        "--timestamp-type",
        choices=("LogAppendTime", "CreateTime"),
        default="LogAppendTime",
        help="input topic's timestamps for the latency run",
    )
    p.add_argument(
        "--alert-formats",
        nargs="+",
        default=["native"],
        choices=("native", "ecs", "ocsf"),
        help="run the worker once per alert format in each repeat (first: the one "
        "the latency runs use); ratios are to the first",
    )
    p.add_argument(
        "--event-rate",
        type=float,
        default=None,
        help="sensor logs: re-time the records as arriving at this many a second (default: the "
        "logs' own times, repeated)",
    )
    p.add_argument(
        "--suppress-window-s",
        type=float,
        default=0.0,
        help="also run the first format with suppression over this many seconds (0: not)",
    )
    p.add_argument(
        "--suppress-by",
        nargs="+",
        default=["source_ip"],
        help="the suppression entity (KDD records have no addresses: e.g. service)",
    )
    p.add_argument(
        "--compare-keras",
        action="store_true",
        help="also run the worker scoring through Keras (as before the numpy pass), paired "
        "with the first format in each repeat",
    )
    p.add_argument(
        "--compare-batch-wait",
        action="store_true",
        help="in each latency repeat, also run the worker with its former batching (the whole "
        "max_batch_wait_ms waited after every batch), back to back in alternating order",
    )
    p.add_argument(
        "--compare-batch-wait-ms",
        nargs="+",
        type=int,
        default=[],
        metavar="MS",
        help="in each latency repeat, also run the worker with max_batch_wait_ms set to each MS "
        "(arms rotated)",
    )
    p.add_argument(
        "--compare-max-batch-records",
        nargs="+",
        type=int,
        default=[],
        metavar="N",
        help="in each latency repeat, also run the worker with max_batch_records set to each N "
        "(arms rotated)",
    )
    p.add_argument(
        "--compare-separate-warmup",
        action="store_true",
        help="in each latency repeat, also measure as before 2026-12-04: warm-up and measured "
        "records from two replays, so the measured ones include a fresh load generator's first "
        "records",
    )
    p.add_argument(
        "--compare-producer",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="also run the worker with these librdkafka producer settings over its own: a "
        "variant in each throughput repeat, and an arm in each latency repeat",
    )
    p.add_argument(
        "--compare-overlap",
        action="store_true",
        help="also run the worker and the passthrough with overlap_commits on: a worker "
        "variant in each throughput repeat, and an arm in each latency repeat",
    )
    p.add_argument(
        "--compare-scoring-sums",
        action="store_true",
        help="also run the worker with STREAM_OD_SCORING_SUMS=blas (each layer's sums by the "
        "BLAS product, not in a fixed order): a variant in each throughput repeat, and an arm "
        "in each latency repeat",
    )
    p.add_argument(
        "--compare-repeated-rows",
        action="store_true",
        help="also run the worker with STREAM_OD_SCORING_REPEATED_ROWS=each (every row "
        "scored, not each distinct row of a micro-batch once): a variant in each throughput "
        "repeat, and an arm in each latency repeat",
    )
    p.add_argument(
        "--scoring-device",
        choices=("auto", "cpu", "gpu"),
        default="auto",
        help="where the worker's model scores (STREAM_OD_SCORING_DEVICE); gpu needs "
        "stream-od[gpu] and a GPU",
    )
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    global SCORING_DEVICE
    SCORING_DEVICE = args.scoring_device
    from trainer.readers import is_sensor_log

    args.sensor = is_sensor_log(args.data)

    if args.latency_rate:
        args.rates = [str(args.latency_rate)]
    artifact = Artifact.load(args.artifact)
    if args.only_latency:
        if "half" in args.rates:
            p.error("--only-latency needs rates in records/s: 'half' needs the throughput runs")
        for rate in args.rates:
            print(json.dumps(latency_run(args, artifact, float(rate))))
        return 0
    run = uuid.uuid4().hex[:8]
    topics = {
        "in": f"bench-{run}-in",
        "alerts": f"bench-{run}-alerts",
        "dlq": f"bench-{run}-dlq",
        "out": f"bench-{run}-passthrough",
    }
    ensure_topics(
        {"bootstrap.servers": args.bootstrap},
        {topics["in"]: 3, topics["alerts"]: 1, topics["dlq"]: 1, topics["out"]: 3},
    )
    print(f"producing {args.count:,} records to {topics['in']} ...", file=sys.stderr)
    stream = stream_for(args, artifact, args.count, seed=11)
    produce(stream, topic=topics["in"], bootstrap_servers=args.bootstrap)

    first = args.alert_formats[0]
    producer = producer_pairs(args.compare_producer)
    # (name, alert format, suppression, Keras scoring, producer settings, worker settings)
    variants = [(f, f, 0.0, False, {}, {}) for f in args.alert_formats]
    if args.suppress_window_s > 0:
        variants.append((f"{first}+suppress", first, args.suppress_window_s, False, {}, {}))
    if args.compare_keras:
        variants.append((f"{first}+keras", first, 0.0, True, {}, {}))
    if args.compare_overlap:
        variants.append((f"{first}+overlap", first, 0.0, False, {}, {"overlap_commits": True}))
    if producer:
        variants.append((f"{first}+producer", first, 0.0, False, producer, {}))
    setting_arms = [a for a in SETTING_ARMS if getattr(args, a.flag)]
    for a in setting_arms:
        variants.append((f"{first}+{a.suffix}", first, 0.0, False, {}, a.settings))
    rows = []
    for r in range(args.repeats):
        group = f"bench-{run}-pass-{r}"
        pass_cpu: dict = {}
        overlap_pass: dict = {}

        def passthrough(group=group, pass_cpu=pass_cpu, overlap_pass=overlap_pass) -> float:
            loop = Passthrough(
                settings_for(args.bootstrap, topics, group), artifact.schema, topics["out"]
            )
            rps = timed(loop, lambda loop=loop: loop.done, args.count, stats=pass_cpu)
            if args.compare_overlap:  # the passthrough with overlapped commits, too
                loop = Passthrough(
                    settings_for(args.bootstrap, topics, f"{group}-overlap", overlap_commits=True),
                    artifact.schema,
                    topics["out"],
                )
                overlap_pass["passthrough_overlap_rps"] = timed(
                    loop, lambda loop=loop: loop.done, args.count
                )
            return rps

        # The passthrough runs first in even repeats and after the workers in odd ones: the
        # broker still writes out what the arm before produced when the next one starts, and
        # the passthrough produces every record, so always running it first would slow the
        # worker after it (the rows keep the order, the result a ratio per order).
        passthrough_first = r % 2 == 0
        pass_rps = passthrough() if passthrough_first else 0.0
        # the variants rotated, so that no variant always runs last
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        by_variant = {}
        for name, fmt, window, keras, producer_config, worker_settings in order:
            metrics = WorkerMetrics()
            extra = {
                "alert_format": fmt,
                "suppress_window_s": window,
                "suppress_by": args.suppress_by,
                "suppression_changelog_topic": f"bench-{run}-suppress-{r}",
                **worker_settings,
            }
            worker_class = worker_with(producer=producer_config) if producer_config else Worker
            worker = worker_class(
                settings_for(args.bootstrap, topics, f"bench-{run}-{name}-{r}", **extra),
                artifact,
                metrics=metrics,
            )
            if keras:  # the scoring the worker did before numpy: the same networks in Keras
                artifact.detector.use_keras()
            try:
                cpu: dict = {}
                by_variant[name] = timed(worker, worker_progress(metrics), args.count, stats=cpu)
                by_variant[f"{name}_cpu_us"] = cpu["cpu_us_per_record"]
            finally:
                if keras:
                    artifact.detector.use_numpy()
            by_variant[f"{name}_alert_rate"] = counter_total(metrics.alerts) / args.count
        if not passthrough_first:
            pass_rps = passthrough()
        worker_rps = by_variant[first]
        rows.append(
            {
                "repeat": r,
                "passthrough_first": passthrough_first,
                "passthrough_rps": pass_rps,
                "worker_rps": worker_rps,
                "ratio": worker_rps / pass_rps,
                "passthrough_cpu_us": pass_cpu["cpu_us_per_record"],
                "worker_cpu_us": by_variant[f"{first}_cpu_us"],
                "cpu_ratio": pass_cpu["cpu_us_per_record"] / by_variant[f"{first}_cpu_us"],
                **overlap_pass,
                **{f"worker_rps_{v}": by_variant[v] for v, *_ in variants},
                **{f"worker_cpu_us_{v}": by_variant[f"{v}_cpu_us"] for v, *_ in variants},
                **{f"alert_rate_{v}": by_variant[f"{v}_alert_rate"] for v, *_ in variants},
            }
        )
        print(
            f"repeat {r}: passthrough {pass_rps:,.0f}/s  "
            + "  ".join(f"worker[{v}] {by_variant[v]:,.0f}/s" for v, *_ in variants)
            + f"  ratio {worker_rps / pass_rps:.2f}"
            + f"  loop CPU µs/record: passthrough {pass_cpu['cpu_us_per_record']:.2f}, "
            f"worker {by_variant[f'{first}_cpu_us']:.2f}",
            file=sys.stderr,
        )

    result = {
        "model_version": artifact.version,
        "detector": artifact.detector_kind,
        "schema": artifact.schema.name,
        "data": [Path(d).name for d in args.data],
        "count": args.count,
        "repeats": args.repeats,
        "passthrough_rps": statistics.median(r["passthrough_rps"] for r in rows),
        "worker_rps": statistics.median(r["worker_rps"] for r in rows),
        "ratio": statistics.median(r["ratio"] for r in rows),
        **{  # the order effect, in plain sight (passthrough first in even repeats)
            f"ratio_passthrough_{when}": statistics.median(
                r["ratio"] for r in rows if r["passthrough_first"] == is_first
            )
            for when, is_first in (("first", True), ("last", False))
            if any(r["passthrough_first"] == is_first for r in rows)
        },
        "passthrough_cpu_us": statistics.median(r["passthrough_cpu_us"] for r in rows),
        "worker_cpu_us": statistics.median(r["worker_cpu_us"] for r in rows),
        "cpu_ratio": statistics.median(r["cpu_ratio"] for r in rows),
        **(
            {
                "passthrough_overlap_rps": statistics.median(
                    r["passthrough_overlap_rps"] for r in rows
                ),
                "ratio_overlap": statistics.median(
                    r[f"worker_rps_{first}+overlap"] / r["passthrough_overlap_rps"] for r in rows
                ),
            }
            if args.compare_overlap
            else {}
        ),
        **{  # paired per repeat, as the ratio above
            f"ratio_{a.name}": statistics.median(
                r[f"worker_rps_{first}+{a.suffix}"] / r["passthrough_rps"] for r in rows
            )
            for a in setting_arms
        },
        "alert_formats": args.alert_formats,
        "suppress_window_s": args.suppress_window_s,
        "suppress_by": args.suppress_by,
        "event_rate": args.event_rate,
        "runs": rows,
    }
    for f, *_ in variants:
        result[f"worker_rps_{f}"] = statistics.median(r[f"worker_rps_{f}"] for r in rows)
        result[f"alert_rate_{f}"] = statistics.median(r[f"alert_rate_{f}"] for r in rows)
        result[f"worker_cpu_us_{f}"] = statistics.median(r[f"worker_cpu_us_{f}"] for r in rows)
        result[f"ratio_{f}_to_passthrough"] = statistics.median(
            r[f"worker_rps_{f}"] / r["passthrough_rps"] for r in rows
        )
        # paired per repeat: the formats ran back to back on the same backlog
        result[f"ratio_{f}_to_{first}"] = statistics.median(
            r[f"worker_rps_{f}"] / r[f"worker_rps_{first}"] for r in rows
        )
    rates = (
        []
        if args.skip_latency
        else [round(result["worker_rps"] / 2) if r == "half" else float(r) for r in args.rates]
    )
    result["latency_by_rate"] = []
    for rate in rates:
        print(f"latency at {rate:,.0f} records/s ...", file=sys.stderr)
        lat_runs: list[dict] = []
        other: dict[str, list[dict]] = {}  # the compared workers' runs, by entry name
        arms = [(Worker, lat_runs, False)]  # (worker, its runs, separate warm-up replay)
        if args.compare_batch_wait:
            arms.append((FixedWaitWorker, other.setdefault("fixed_wait", []), False))
        if args.compare_overlap:
            arms.append((worker_with(overlap_commits=True), other.setdefault("overlap", []), False))
        for ms in args.compare_batch_wait_ms:
            arm = worker_with(max_batch_wait_ms=ms)
            arms.append((arm, other.setdefault(f"batch_wait_{ms}ms", []), False))
        for n in args.compare_max_batch_records:
            arm = worker_with(max_batch_records=n)
            arms.append((arm, other.setdefault(f"max_batch_records_{n}", []), False))
        if producer:
            arms.append((worker_with(producer=producer), other.setdefault("producer", []), False))
        if args.compare_separate_warmup:
            arms.append((Worker, other.setdefault("separate_warmup", []), True))
        for a in setting_arms:
            arms.append((worker_with(**a.settings), other.setdefault(a.name, []), False))
        if args.suppress_window_s > 0:
            arm = worker_with(
                suppress_window_s=args.suppress_window_s, suppress_by=args.suppress_by
            )
            arms.append((arm, other.setdefault("suppressed", []), False))
        for r in range(args.repeats):
            # rotated, so that no arm always runs first
            for worker_class, runs, separate in arms[r % len(arms) :] + arms[: r % len(arms)]:
                runs.append(latency_run(args, artifact, rate, worker_class, separate))
        entry = {"offered_rps": rate, **latency_medians(lat_runs)}
        entry |= {"latency_timestamps": args.timestamp_type, "latency_runs": lat_runs}
        for name, runs in other.items():
            entry[name] = {**latency_medians(runs), "latency_runs": runs}
        result["latency_by_rate"].append(entry)
    # the first rate's figures at the top level, as before --rates
    first_rate = result["latency_by_rate"][0] if rates else {}
    result |= {
        k: first_rate.get(k, float("nan"))
        for k in ("offered_rps", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
    }

    print(f"\n| {'':<32} | {'value':>12} |\n|{'-' * 34}|{'-' * 14}|")
    for key, label in (
        ("passthrough_rps", "passthrough, records/s"),
        ("worker_rps", f"worker ({result['detector']}), records/s"),
        ("ratio", "worker / passthrough"),
        ("ratio_passthrough_first", "  in repeats passthrough first"),
        ("ratio_passthrough_last", "  in repeats passthrough last"),
        ("passthrough_cpu_us", "passthrough loop CPU, µs/record"),
        ("worker_cpu_us", "worker loop CPU, µs/record"),
        ("cpu_ratio", "passthrough CPU / worker CPU"),
        ("passthrough_overlap_rps", "passthrough, overlap, records/s"),
        ("ratio_overlap", "overlap worker / overlap passth."),
        *((f"ratio_{a.name}", a.ratio_label) for a in SETTING_ARMS),
    ):
        if key not in result:
            continue
        v = result[key]
        print(
            f"| {label:<32} | {v:>12,.2f} |"
            if "ratio" in key or key.endswith("_us")
            else f"| {label:<32} | {v:>12,.0f} |"
        )
    if result["latency_by_rate"]:
        print(
            "\n| offered records/s | latency p50, ms | p95, ms | p99, ms | repeats | records "
            "/ batch | decode, score, commit ms / batch | worker loop busy | CPU cores: worker, "
            "replay, broker |\n|---|---|---|---|---|---|---|---|---|"
        )
        for r in result["latency_by_rate"]:
            print(latency_row(f"{r['offered_rps']:,.0f}", r))
            if "fixed_wait" in r:
                print(latency_row(f"{r['offered_rps']:,.0f}, former batching", r["fixed_wait"]))
            if "overlap" in r:
                print(latency_row(f"{r['offered_rps']:,.0f}, commits overlapped", r["overlap"]))
            for ms in args.compare_batch_wait_ms:
                label = f"{r['offered_rps']:,.0f}, max_batch_wait_ms {ms}"
                print(latency_row(label, r[f"batch_wait_{ms}ms"]))
            for n in args.compare_max_batch_records:
                label = f"{r['offered_rps']:,.0f}, max_batch_records {n:,}"
                print(latency_row(label, r[f"max_batch_records_{n}"]))
            if "separate_warmup" in r:
                label = f"{r['offered_rps']:,.0f}, a fresh replay for the measured records"
                print(latency_row(label, r["separate_warmup"]))
            if "producer" in r:
                label = f"{r['offered_rps']:,.0f}, {' '.join(args.compare_producer)}"
                print(latency_row(label, r["producer"]))
            for a in SETTING_ARMS:
                if a.name in r:
                    label = f"{r['offered_rps']:,.0f}, {a.latency_label}"
                    print(latency_row(label, r[a.name]))
            if "suppressed" in r:
                by = " ".join(args.suppress_by)
                label = f"{r['offered_rps']:,.0f}, suppressed {args.suppress_window_s:g} s by {by}"
                print(latency_row(label, r["suppressed"]))
    if len(variants) > 1:
        print(
            f"\n| alert format | worker records/s | alerts / record | vs {first} | vs passthrough "
            f"| loop CPU µs/record |\n|---|---|---|---|---|---|"
        )
        for f, *_ in variants:
            print(
                f"| {f} | {result[f'worker_rps_{f}']:,.0f} | {result[f'alert_rate_{f}']:.3f} | "
                f"{result[f'ratio_{f}_to_{first}']:.2f} | "
                f"{result[f'ratio_{f}_to_passthrough']:.2f} | "
                f"{result[f'worker_cpu_us_{f}']:.2f} |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
