"""The worker end to end on the real broker: exactly once, offline-equal scores, metrics."""

from __future__ import annotations

import time

import numpy as np
import orjson

from stream_od.features import epoch_seconds
from tests.integration.conftest import offline_scores
from tests.worker_support import WorkerProcess, metric_total, metric_values
from trainer.replay import produce


def by_seq(messages) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for m in messages:
        seq = int(m.key())
        assert seq not in out, f"record {seq} appears twice"
        out[seq] = orjson.loads(m.value())
    return out


def test_twenty_thousand_records_exactly_once_with_offline_scores(
    kafka_bootstrap, worker_topics, mahalanobis_artifact, kdd_stream, read_topic, tmp_path
):
    artifact, path = mahalanobis_artifact
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_MAX_BATCH_RECORDS": "500",
    }
    started = time.time()
    with WorkerProcess(env, tmp_path / "worker.log").start() as worker:
        produce(kdd_stream, topic=env["STREAM_OD_INPUT_TOPIC"], bootstrap_servers=kafka_bootstrap)
        # Scrape /metrics over HTTP while the run goes on, until every record is through.
        text = worker.wait_for("stream_od_records_scored_total", 20_000)
        scraped = time.time()
        # The lag gauges are refreshed once a second, and a quick run can end before the
        # first refresh after assignment: read them once each partition has one.
        lag_text = worker.wait_for_samples("stream_od_consumer_lag_seconds", 3)
        assert worker.terminate() == 0, worker.log()

    scores = by_seq(read_topic(env["STREAM_OD_SCORES_TOPIC"]))
    alerts = by_seq(read_topic(env["STREAM_OD_ALERTS_TOPIC"]))
    dead = read_topic(env["STREAM_OD_DEAD_LETTER_TOPIC"])

    # Every record accounted for exactly once.
    assert sorted(scores) == list(range(20_000)) and dead == []
    # Alerts are what offline scoring of the same records says, score for score.
    expected = offline_scores(artifact, kdd_stream.values)
    got = np.array([scores[i]["score"] for i in range(20_000)])
    np.testing.assert_array_equal(got, expected)
    expected_alerts = set(np.flatnonzero(expected > artifact.threshold).tolist())
    assert set(alerts) == expected_alerts and len(alerts) > 100
    for seq, doc in alerts.items():
        assert doc["score"] == expected[seq]
        assert doc["model_version"] == artifact.version and doc["threshold"] == artifact.threshold
        assert doc["kafka"]["topic"] == env["STREAM_OD_INPUT_TOPIC"]
        assert doc["record"]["service"]  # the original fields travel with the alert
        assert len(doc["top_features"]) == 3
    # Most alerts are real attacks (the label travels only in the input's header).
    attacks = {i for i in alerts if kdd_stream.labels[i] != "normal"}
    assert len(attacks) / len(alerts) > 0.8

    # The metrics agree with what the topics hold.
    assert metric_total(text, "stream_od_records_consumed_total") == 20_000
    assert metric_total(text, "stream_od_alerts_total") == len(alerts)
    assert metric_total(text, "stream_od_dead_letters_total") == 0
    assert metric_total(text, "stream_od_end_to_end_latency_seconds_count") == 20_000
    assert metric_total(text, "stream_od_assigned_partitions") == 3
    assert metric_total(text, "stream_od_transaction_aborts_total") == 0
    info = metric_values(text, "stream_od_model_info")
    assert any(artifact.version in labels for labels in info)
    # The signals that see a hung loop, a stale model and time behind (read over HTTP): the
    # heartbeat is a time of this worker's loop, between its start and the scrape.
    heartbeat = metric_total(text, "stream_od_loop_heartbeat_timestamp_seconds")
    assert started <= heartbeat <= scraped
    created = metric_total(text, "stream_od_model_created_timestamp_seconds")
    assert abs(created - epoch_seconds(artifact.created_at)) < 1
    assert metric_total(text, "process_resident_memory_bytes") > 10e6
    lag_s = metric_values(lag_text, "stream_od_consumer_lag_seconds")
    assert len(lag_s) == 3 and all(v >= 0 for v in lag_s.values())
