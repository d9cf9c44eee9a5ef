"""Every Prometheus metric the worker exports, declared in one place, and the HTTP endpoint.

Names follow Prometheus conventions: one ``stream_od_`` prefix, base units (seconds, records),
``_total`` on counters.  Each worker owns a :class:`WorkerMetrics` with its own registry, so
tests can run several in one process.  The HTTP server serves ``/metrics``, ``/healthz`` (the
loop turned recently) and ``/readyz`` (a model is loaded and the consumer is subscribed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from prometheus_client import (
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from stream_od.features import epoch_seconds
from stream_od.schema.select import NOT_SELECTED

# The *_created series double every counter's cardinality and no dashboard uses them.
disable_created_metrics()

PREFIX = "stream_od"

# Latency buckets: a micro-batch worker's end-to-end latency lives between ~5 ms and seconds.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.02,
    0.03,
    0.04,
    0.05,
    0.06,
    0.08,
    0.1,
    0.125,
    0.15,
    0.2,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# Reading state back when partitions are taken over: tens of ms to minutes (an hour of a busy
# partition's records for its traffic windows).
RESTORE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

STAGES = ("decode", "score", "commit")


def bucket_quantile(upper: np.ndarray, cumulative: np.ndarray, q: float) -> float:
    """Prometheus' ``histogram_quantile``: the bucket holding rank ``q * total``, with linear
    interpolation inside it.  ``upper`` are the finite bucket bounds; ``cumulative`` has one
    more entry, the +Inf bucket (an answer in it is the highest finite bound)."""
    total = float(cumulative[-1])
    if total == 0:
        return float("nan")
    rank = q * total
    i = int(np.searchsorted(cumulative, rank, side="left"))
    if i >= len(upper):
        return float(upper[-1])
    lo = 0.0 if i == 0 else float(upper[i - 1])
    below = 0.0 if i == 0 else float(cumulative[i - 1])
    inside = float(cumulative[i]) - below
    return lo + (float(upper[i]) - lo) * ((rank - below) / inside if inside else 1.0)


class BulkHistogram:
    """A Prometheus histogram that takes a whole numpy array per call.

    The worker observes one latency per record; ``prometheus_client.Histogram.observe`` is a
    Python call per value, which is what the hot path must not do.  This bins the batch with
    one ``np.searchsorted`` and exports the standard ``_bucket``/``_sum``/``_count`` series.
    """

    def __init__(
        self, name: str, documentation: str, buckets: tuple[float, ...], registry: CollectorRegistry
    ):
        self.name, self.documentation = name, documentation
        self.upper = np.asarray(buckets, dtype=np.float64)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return
        counts = np.bincount(
            np.searchsorted(self.upper, values, side="left"), minlength=len(self._counts)
        )
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def snapshot(self) -> tuple[np.ndarray, float]:
        """Per-bucket counts (last = +Inf) and the sum so far; subtract two for a window."""
        with self._lock:
            return self._counts.copy(), self._sum

    def quantile(self, q: float, since: tuple[np.ndarray, float] | None = None) -> float:
        """``histogram_quantile`` of the observations (after ``since``, a snapshot)."""
        counts = self.snapshot()[0] - (since[0] if since is not None else 0)
        return bucket_quantile(self.upper, np.cumsum(counts), q)

    def collect(self):
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total = self._sum
        labels = [*(repr(float(b)) for b in self.upper), "+Inf"]
        yield HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=list(zip(labels, (int(c) for c in cumulative))),
            sum_value=total,
        )


def build_labels() -> dict[str, str]:
    """``stream_od_build_info``'s labels: stream-od's version and the Kafka client's."""
    import importlib.metadata as md

    import confluent_kafka

    try:
        version = md.version("stream-od")
    except md.PackageNotFoundError:  # run from a source tree that was never installed
        version = "unknown"
    return {
        "version": version,
        "confluent_kafka": str(confluent_kafka.__version__),
        "librdkafka": confluent_kafka.libversion()[0],
    }


class WorkerMetrics:
    """The worker's metrics; attribute names match the exported names minus the prefix."""

    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.records_consumed = Counter(
            f"{PREFIX}_records_consumed_total", "Records read from the input topic", registry=r
        )
        self.records_scored = Counter(
            f"{PREFIX}_records_scored_total",
            "Records scored by the model and committed",
            registry=r,
        )
        self.alerts = Counter(
            f"{PREFIX}_alerts_total",
            "Alerts committed to the alerts topic",
            ["severity"],
            registry=r,
        )
        self.alerts_suppressed = Counter(
            f"{PREFIX}_alerts_suppressed_total",
            "Alerts held back by suppression (counted into their entity's summary alert)",
            registry=r,
        )
        self.alert_summaries = Counter(
            f"{PREFIX}_alert_summaries_total",
            "Summary alerts committed (one per suppression window that held alerts back)",
            registry=r,
        )
        self.alerts_dropped = Counter(
            f"{PREFIX}_alerts_dropped_total",
            "Alerts not sent, by reason (rate_limit: over max_alerts_per_second)",
            ["reason"],
            registry=r,
        )
        self.suppression_entities = Gauge(
            f"{PREFIX}_suppression_entities",
            "Entities with an open suppression window held by this worker",
            registry=r,
        )
        self.unseen_categories = Counter(
            f"{PREFIX}_unseen_category_records",
            "Records scored whose value of a categorical field was not in the model's training "
            "vocabulary (scored through its <other> column): traffic the model has not seen",
            ["field"],
            registry=r,
        )
        self.missing_fields = Counter(
            f"{PREFIX}_missing_field_records",
            "Records scored without the field (absent or null: scored with its default), for "
            "the fields the model has a 'was missing' column for",
            ["field"],
            registry=r,
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters_total",
            "Records committed to the dead-letter topic",
            ["reason"],
            registry=r,
        )
        self.records_skipped = Counter(
            f"{PREFIX}_records_skipped_total",
            "Records committed without scoring, by reason (not_selected: a record of another "
            "kind than the model's schema is for, e.g. an EVE dns event on a flow model)",
            ["reason"],
            registry=r,
        )
        self.batches = Counter(f"{PREFIX}_batches_total", "Micro-batches committed", registry=r)
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size_records",
            "Records per micro-batch",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_stage_seconds = Histogram(
            f"{PREFIX}_batch_stage_seconds",
            "Time per micro-batch stage: decode (bytes to features), score (model), "
            "commit (produce alerts and dead letters, commit offsets)",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.end_to_end_latency = BulkHistogram(
            f"{PREFIX}_end_to_end_latency_seconds",
            "From the record's Kafka timestamp to the commit of its batch",
            LATENCY_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            f"{PREFIX}_consumer_lag_records",
            "High watermark minus the committed position, per assigned partition",
            ["topic", "partition"],
            registry=r,
        )
        self.consumer_lag_seconds = Gauge(
            f"{PREFIX}_consumer_lag_seconds",
            "How far behind in time each assigned partition is: the age of the last record "
            "committed while records wait behind it (0 when caught up)",
            ["topic", "partition"],
            registry=r,
        )
        self.loop_heartbeat = Gauge(
            f"{PREFIX}_loop_heartbeat_timestamp_seconds",
            "When the consume loop last turned (each poll, busy or idle): a hung loop stops it",
            registry=r,
        )
        self.assigned_partitions = Gauge(
            f"{PREFIX}_assigned_partitions", "Input partitions assigned to this worker", registry=r
        )
        self.rebalances = Counter(
            f"{PREFIX}_rebalances_total",
            "Rebalance callbacks by kind (assign, revoke, lost)",
            ["kind"],
            registry=r,
        )
        self.transaction_aborts = Counter(
            f"{PREFIX}_transaction_aborts_total",
            "Aborted transactions by reason",
            ["reason"],
            registry=r,
        )
        self.window_keys = Gauge(
            f"{PREFIX}_window_keys",
            "Keys (hosts) with traffic-window state held by this worker",
            registry=r,
        )
        self.window_late_records = Counter(
            f"{PREFIX}_window_late_records_total",
            "Records whose key had been forgotten (later than the windows reach)",
            registry=r,
        )
        self.windows_stage_records = Counter(
            f"{PREFIX}_windows_stage_records_total",
            "Records a windows stage passed on with their window values (no scoring)",
            registry=r,
        )
        self.window_restored_records = Counter(
            f"{PREFIX}_window_restored_records_total",
            "Records read back to rebuild traffic windows (partition taken over, batch redone)",
            registry=r,
        )
        self.state_restore_seconds = Histogram(
            f"{PREFIX}_state_restore_seconds",
            "Time taken to read state back before scoring partitions taken over (or a batch "
            "redone), during which they wait: suppression windows from the changelog (once per "
            "assignment), traffic windows from each partition's tail (once per partition)",
            ["state"],
            buckets=RESTORE_BUCKETS,
            registry=r,
        )
        self.producer_renewals = Counter(
            f"{PREFIX}_producer_renewals_total",
            "Transactional producers replaced after a transaction timed out (broker outage)",
            registry=r,
        )
        self.model = Info(f"{PREFIX}_model", "The model the worker scores with", registry=r)
        self.scoring = Info(
            f"{PREFIX}_scoring", "Where the model scores: backend and device", registry=r
        )
        self.model_created = Gauge(
            f"{PREFIX}_model_created_timestamp_seconds",
            "When the loaded model was trained (its artifact's created_at)",
            registry=r,
        )
        self.model_expected_alert_rate = Gauge(
            f"{PREFIX}_model_expected_alert_rate",
            "The share of normal traffic the model's threshold was set to alert on",
            registry=r,
        )
        self.model_unseen_category_share = Gauge(
            f"{PREFIX}_model_unseen_category_share",
            "Share of the model's held-out normal training rows whose value of the field was "
            "not in its training vocabulary (the baseline of unseen_category_records_total)",
            ["field"],
            registry=r,
        )
        self.model_missing_field_share = Gauge(
            f"{PREFIX}_model_missing_field_share",
            "Share of the model's held-out normal training rows that lacked the field (the "
            "baseline of missing_field_records_total)",
            ["field"],
            registry=r,
        )
        self.model_threshold = Gauge(
            f"{PREFIX}_model_threshold",
            "Alert threshold of the loaded model (score units)",
            registry=r,
        )
        self.model_swaps = Counter(
            f"{PREFIX}_model_swaps_total",
            "Times a newer model replaced the running one",
            registry=r,
        )
        self.model_refusals = Counter(
            f"{PREFIX}_model_refusals_total",
            "Model versions refused (integrity, signature, schema, rollback)",
            ["reason"],
            registry=r,
        )
        self.up = Gauge(f"{PREFIX}_worker_up", "1 while the worker loop runs", registry=r)
        # What runs: a rollout shows as a change of version across the fleet, and a librdkafka
        # bug report needs the client library's own version.
        self.build = Info(
            f"{PREFIX}_build", "The stream-od release and its Kafka client", registry=r
        )
        self.build.info(build_labels())
        # The process' CPU, memory, open files and start time (process_*), and the Python
        # version (python_info): the registry is our own, so the default ones are not in it.
        if registry is None:
            ProcessCollector(registry=r)
            r.register(PLATFORM_COLLECTOR)
        for stage in STAGES:
            self.batch_stage_seconds.labels(stage)
        for kind in ("assign", "revoke", "lost"):
            self.rebalances.labels(kind)
        self.records_skipped.labels(NOT_SELECTED)  # 0 from the start, so rate() has a series

    def set_model(
        self,
        version: str,
        detector: str,
        threshold: float,
        *,
        backend: str = "numpy",
        device: str = "cpu",
    ) -> None:
        self.model.info({"version": version, "detector": detector, "threshold": repr(threshold)})
        self.model_threshold.set(threshold)
        self.scoring.info({"backend": backend, "device": device})

    def describe_model(self, model: Any, *, backend: str, device: str) -> None:
        """The series that describe the model being served (an artifact, or anything with its
        ``version``, ``detector_kind``, ``threshold``, ``schema``, and optionally
        ``created_at`` and training ``metrics``): set at start and on every swap."""
        self.set_model(
            model.version,
            model.detector_kind,
            float(model.threshold),
            backend=backend,
            device=device,
        )
        created = epoch_seconds(getattr(model, "created_at", None))
        if created is not None:
            self.model_created.set(created)
        trained = getattr(model, "metrics", {}) or {}
        rate = expected_alert_rate(trained)
        if rate is not None:
            self.model_expected_alert_rate.set(rate)
        # per categorical field, and per field with a "was missing" column: the live count
        # beside the model's share on its held-out training rows (none for older models)
        _drift_series(
            self.unseen_categories,
            self.model_unseen_category_share,
            model.schema.unseen_columns,
            trained.get("unseen_category_share"),
        )
        _drift_series(
            self.missing_fields,
            self.model_missing_field_share,
            model.schema.missing_columns,
            trained.get("missing_field_share"),
        )

    def clear_lag(self, topic: str, partitions: list[int]) -> None:
        """Drop the lag series of partitions this worker no longer owns."""
        for p in partitions:
            for gauge in (self.consumer_lag, self.consumer_lag_seconds):
                try:
                    gauge.remove(topic, str(p))
                except KeyError:
                    pass

    def render(self) -> bytes:
        return generate_latest(self.registry)


def expected_alert_rate(metrics: dict[str, Any]) -> float | None:
    """The share of normal traffic the model was thresholded to alert on: a site model's
    target (``holdout.target_alert_rate``), else the share of its threshold rows above the
    threshold; None when the artifact says neither (the KDD protocol's threshold is set on
    traffic with attacks)."""
    holdout = metrics.get("holdout")
    if isinstance(holdout, dict) and isinstance(holdout.get("target_alert_rate"), (int, float)):
        return float(holdout["target_alert_rate"])
    rate = metrics.get("threshold_alert_rate")
    return float(rate) if isinstance(rate, (int, float)) else None


def _drift_series(live: Any, trained: Any, fields: Iterable[str], shares: Any) -> None:
    """One ``live`` counter series per field, from 0 so that rate() sees the first records,
    and the model's ``trained`` share beside it where the artifact has one."""
    trained.clear()
    shares = shares if isinstance(shares, dict) else {}
    for name in fields:
        live.labels(name)
        share = shares.get(name)
        if isinstance(share, (int, float)):
            trained.labels(name).set(float(share))


class Health:
    """What /healthz and /readyz report; the worker loop updates it."""

    def __init__(self, stale_after_s: float = 30.0):
        self.stale_after_s = stale_after_s
        self._last_turn = time.monotonic()
        self.model_loaded = False
        self.subscribed = False

    def turned(self) -> None:
        self._last_turn = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self._last_turn < self.stale_after_s

    def ready(self) -> bool:
        return self.model_loaded and self.subscribed and self.alive()


class MetricsServer:
    """A small HTTP server for Prometheus and probes, on its own daemon thread."""

    def __init__(self, metrics: WorkerMetrics, health: Health, host: str, port: int):
        metrics_ref, health_ref = metrics, health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, metrics_ref.render(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok = health_ref.alive()
                    self._send(200 if ok else 503, b"ok\n" if ok else b"loop stalled\n")
                elif path == "/readyz":
                    ok = health_ref.ready()
                    why = (
                        b"ready\n"
                        if ok
                        else b"no model loaded\n"
                        if not health_ref.model_loaded
                        else b"not subscribed\n"
                        if not health_ref.subscribed
                        else b"loop stalled\n"
                    )
                    self._send(200 if ok else 503, why)
                else:
                    self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

            def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep scrapes out of the worker's log
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
