"""Metrics and probes, read back over HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request

import numpy as np

from stream_od.metrics import Health, MetricsServer, WorkerMetrics, expected_alert_rate


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_and_probes_over_http():
    import importlib.metadata

    stream_od_version = importlib.metadata.version("stream-od")
    m = WorkerMetrics()
    health = Health(stale_after_s=60)
    server = MetricsServer(m, health, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        m.records_consumed.inc(7)
        m.end_to_end_latency.observe_many(np.array([0.004, 0.02, 0.02, 99.0]))
        m.set_model("v9", "vaegmm", 3.25)
        code, text = get(base + "/metrics")
        assert code == 200
        assert "stream_od_records_consumed_total 7.0" in text
        assert 'stream_od_end_to_end_latency_seconds_bucket{le="0.005"} 1.0' in text
        assert 'stream_od_end_to_end_latency_seconds_bucket{le="0.02"} 3.0' in text
        assert 'stream_od_end_to_end_latency_seconds_bucket{le="+Inf"} 4.0' in text
        assert "stream_od_end_to_end_latency_seconds_count 4.0" in text
        assert 'stream_od_model_info{detector="vaegmm",threshold="3.25",version="v9"} 1.0' in text
        import confluent_kafka

        build = (
            f'stream_od_build_info{{confluent_kafka="{confluent_kafka.__version__}",'
            f'librdkafka="{confluent_kafka.libversion()[0]}",version="{stream_od_version}"}} 1.0'
        )
        assert build in text

        assert get(base + "/healthz")[0] == 200
        assert get(base + "/readyz") == (503, "no model loaded\n")
        health.model_loaded = True
        assert get(base + "/readyz") == (503, "not subscribed\n")
        health.subscribed = True
        assert get(base + "/readyz")[0] == 200
        health.stale_after_s = 0
        assert get(base + "/healthz")[0] == 503
        assert get(base + "/nope")[0] == 404
    finally:
        server.stop()


def test_lag_series_are_cleared_on_revoke():
    m = WorkerMetrics()
    m.consumer_lag.labels("in", "0").set(5)
    m.consumer_lag.labels("in", "1").set(6)
    m.clear_lag("in", [0, 7])
    text = m.render().decode()
    assert 'partition="0"' not in text and 'partition="1"' in text


def test_bucket_quantile_interpolates_like_prometheus():
    m = WorkerMetrics()
    h = m.end_to_end_latency
    h.observe_many(np.array([0.001] * 50 + [0.015] * 40 + [0.045] * 10))
    # rank 50 closes the first bucket (le 0.005); rank 90 closes le=0.02; rank 99 is 9/10
    # of the way through le 0.04..0.05.
    assert h.quantile(0.5) == 0.005
    assert abs(h.quantile(0.9) - 0.02) < 1e-12
    assert abs(h.quantile(0.99) - (0.04 + 0.01 * 0.9)) < 1e-12
    since = h.snapshot()
    h.observe_many(np.array([0.7, 0.7]))
    assert h.quantile(0.5, since) == 0.5 + 0.25 * (1 / 2)
    from stream_od.demo import histogram_quantile

    name = "stream_od_end_to_end_latency_seconds"
    assert abs(histogram_quantile(m.render().decode(), name, 0.99) - h.quantile(0.99)) < 1e-12
    # Between two scrapes (the demo's steady state): what the histogram's own snapshot says.
    before, snap = m.render().decode(), h.snapshot()
    h.observe_many(np.array([0.003, 0.2, 0.2, 0.2]))
    for q in (0.5, 0.99):
        got = histogram_quantile(m.render().decode(), name, q, since=before)
        assert abs(got - h.quantile(q, snap)) < 1e-12
        assert got > 0.1, "only the four new observations count, three of them 0.2 s"


def test_the_expected_alert_rate_comes_from_the_artifact():
    assert expected_alert_rate({"holdout": {"target_alert_rate": 0.01}}) == 0.01
    assert expected_alert_rate({"threshold_alert_rate": 0.02}) == 0.02
    assert expected_alert_rate({"test_batch": {"flag_rate": 0.1}}) is None  # KDD protocol
