"""Bounded failure on the real broker: an output topic that refuses records is retried with
backoff, waited out when it starts accepting them again, and past max_batch_attempts stops the
worker with exit code 3 and a message that names the topic and the fix.  The topics refuse
only once the worker runs: one that refuses from the start is refused at start
(test_worker_topic_settings)."""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np
import orjson
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.conftest import offline_scores
from tests.integration.test_worker_stream import by_seq
from tests.kafka_support import set_topic_config
from tests.worker_support import WorkerProcess, metric_total, wait_consumed
from trainer.replay import produce

TINY = "100"  # max.message.bytes smaller than any alert: the broker refuses each one


def test_an_output_topic_that_refuses_records_for_a_while_is_waited_out(
    kafka_bootstrap, worker_topics, mahalanobis_artifact, kdd_stream, read_topic, tmp_path
):
    _, path = mahalanobis_artifact
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_MAX_BATCH_ATTEMPTS": "30",
    }
    topic, group = env["STREAM_OD_INPUT_TOPIC"], env["STREAM_OD_GROUP_ID"]
    with WorkerProcess(env, tmp_path / "w.log").start() as w:
        set_topic_config(kafka_bootstrap, env["STREAM_OD_ALERTS_TOPIC"], "max.message.bytes", TINY)
        produce(kdd_stream, topic=topic, bootstrap_servers=kafka_bootstrap)
        w.wait_for("stream_od_transaction_aborts_total", 2)  # refused, retried, refused
        assert w.proc.poll() is None, w.log()
        set_topic_config(
            kafka_bootstrap, env["STREAM_OD_ALERTS_TOPIC"], "max.message.bytes", "1048588"
        )
        wait_consumed(kafka_bootstrap, group, topic, w, timeout=180)
        aborts = metric_total(w.metrics(), "stream_od_transaction_aborts_total")
        assert w.terminate() == 0, w.log()
    assert aborts >= 2
    scores = by_seq(read_topic(env["STREAM_OD_SCORES_TOPIC"]))  # fails on a duplicate
    assert sorted(scores) == list(range(len(kdd_stream)))
    assert read_topic(env["STREAM_OD_ALERTS_TOPIC"])  # the refused alerts made it in the end


def test_an_output_topic_that_keeps_refusing_stops_the_worker_naming_it(
    kafka_bootstrap, worker_topics, mahalanobis_artifact, kdd_stream, read_topic, tmp_path
):
    artifact, path = mahalanobis_artifact
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_MAX_BATCH_ATTEMPTS": "3",
    }
    alerts = env["STREAM_OD_ALERTS_TOPIC"]
    feeder = threading.Thread(
        target=produce,
        args=(kdd_stream,),
        daemon=True,
        kwargs=dict(
            topic=env["STREAM_OD_INPUT_TOPIC"], bootstrap_servers=kafka_bootstrap, rate=2_000.0
        ),
    )
    with WorkerProcess(env, tmp_path / "w.log").start() as w:
        set_topic_config(kafka_bootstrap, alerts, "max.message.bytes", TINY)
        feeder.start()
        try:
            code = w.proc.wait(120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not stop: {w.log()}")
        log = w.log()
    # The feeder finishes before the topics are deleted at teardown (else its records fail
    # there, and pytest blames whichever test runs then).
    feeder.join(60)
    assert code == 3, log
    assert f"topic {alerts!r} refused" in log and "max.message.bytes" in log, log
    # Nothing half-written: no batch with a refused alert committed its scores (the alerts
    # topic is empty whatever happened, as it refuses every alert).
    scores = [orjson.loads(m.value())["score"] for m in read_topic(env["STREAM_OD_SCORES_TOPIC"])]
    assert all(score <= artifact.threshold for score in scores), "a batch with an alert committed"


def test_an_output_topic_deleted_and_created_again_is_waited_out(
    kafka_bootstrap, worker_topics, mahalanobis_artifact, kdd_stream, read_topic, tmp_path
):
    """The scores topic is deleted mid-stream (what went there before is gone with it) and
    created again: the worker waits, then every record is still scored exactly once: the
    alerts topic, never deleted, holds each alert of the whole stream once."""
    _, path = mahalanobis_artifact
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_MAX_BATCH_ATTEMPTS": "50",
        "STREAM_OD_MAX_BATCH_RECORDS": "200",
    }
    topic, group = env["STREAM_OD_INPUT_TOPIC"], env["STREAM_OD_GROUP_ID"]
    scores_topic = env["STREAM_OD_SCORES_TOPIC"]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    feeder = threading.Thread(
        target=produce,
        args=(kdd_stream,),
        daemon=True,
        kwargs=dict(topic=topic, bootstrap_servers=kafka_bootstrap, rate=2_000.0),
    )
    with WorkerProcess(env, tmp_path / "w.log").start() as w:
        feeder.start()
        w.wait_for("stream_od_records_scored_total", 2_000)
        for future in admin.delete_topics([scores_topic]).values():
            future.result(30)
        time.sleep(5)
        deadline = time.monotonic() + 60
        while True:  # the broker finishes deleting before it lets the name be used again
            try:
                for future in admin.create_topics([NewTopic(scores_topic, 1, 1)]).values():
                    future.result(30)
                break
            except KafkaException:
                assert time.monotonic() < deadline
                time.sleep(1)
        feeder.join(60)
        wait_consumed(kafka_bootstrap, group, topic, w, timeout=180)
        assert w.terminate() == 0, w.log()
    # The worker waits either way: its producer retries the missing partition until the topic
    # is back, or a transaction aborts and the batch is redone (both were seen here).
    artifact, _ = mahalanobis_artifact
    expected = np.flatnonzero(offline_scores(artifact, kdd_stream.values) > artifact.threshold)
    alerted = sorted(int(m.key()) for m in read_topic(env["STREAM_OD_ALERTS_TOPIC"]))
    assert alerted == expected.tolist()  # each alert of the whole stream, once
    scores = by_seq(read_topic(scores_topic))  # fails on a duplicate
    assert scores and max(scores) == len(kdd_stream) - 1  # scored to the end, into the new one
    assert min(scores) > 0  # and the deletion was real: what went there before it is gone
