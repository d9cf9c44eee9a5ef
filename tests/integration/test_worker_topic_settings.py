"""Output topic settings that would stop a partition, on the real broker: refused at start with
the setting to change (a compacted output, a max.message.bytes below what the worker may
write), met where the worker can (its batches sized to a small max.message.bytes, a windows
stage's timestamps moved inside the stage topic's limits), and named when they change under a
running worker (compaction switched on, an output topic deleted for good)."""

from __future__ import annotations

import subprocess
import time
import uuid

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from stream_od.errors import EXIT_STUCK
from stream_od.worker_cli import EXIT_CONFIG
from tests.integration.test_worker_stream import by_seq
from tests.kafka_support import set_topic_config
from tests.worker_support import WorkerProcess, wait_consumed
from trainer.replay import log_stream, produce


def exit_of(w: WorkerProcess, timeout: float = 120) -> tuple[int, str]:
    try:
        code = w.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not stop: {w.log()}")
    return code, w.log()


def worker_env(topics: dict, bootstrap: str, artifact_path, **extra: str) -> dict:
    return {
        **topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(artifact_path),
        **extra,
    }


def test_a_compacted_or_too_small_output_topic_is_refused_at_start_naming_each(
    kafka_bootstrap, worker_topics, new_topic, mahalanobis_artifact, tmp_path
):
    _, path = mahalanobis_artifact
    dlq = new_topic(prefix="dlq", config={"cleanup.policy": "compact"})
    alerts = new_topic(prefix="alerts", config={"max.message.bytes": "500000"})
    env = worker_env(
        {**worker_topics, "STREAM_OD_DEAD_LETTER_TOPIC": dlq, "STREAM_OD_ALERTS_TOPIC": alerts},
        kafka_bootstrap,
        path,
    )
    w = WorkerProcess(env, tmp_path / "w.log").start(wait_ready=False)
    with w:
        code, log = exit_of(w, 60)
    assert code == EXIT_CONFIG, log
    assert f"topic {dlq!r} (STREAM_OD_DEAD_LETTER_TOPIC) has cleanup.policy=compact" in log, log
    assert "set its cleanup.policy to delete" in log, log
    assert f"topic {alerts!r} (STREAM_OD_ALERTS_TOPIC) takes records up to " in log, log
    assert "max.message.bytes=500000" in log and "STREAM_OD_MAX_OUTPUT_BYTES=900000" in log, log


def test_compaction_switched_on_under_a_running_worker_is_named(
    kafka_bootstrap, worker_topics, mahalanobis_artifact, tmp_path
):
    """A keyless record that is no JSON has a keyless dead letter, which a compacted topic
    refuses: the worker stops (exit 3) saying which setting does it."""
    _, path = mahalanobis_artifact
    env = worker_env(worker_topics, kafka_bootstrap, path, STREAM_OD_MAX_BATCH_ATTEMPTS="2")
    dlq = env["STREAM_OD_DEAD_LETTER_TOPIC"]
    with WorkerProcess(env, tmp_path / "w.log").start() as w:
        set_topic_config(kafka_bootstrap, dlq, "cleanup.policy", "compact")
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        producer.produce(env["STREAM_OD_INPUT_TOPIC"], value=b"{not json")
        assert producer.flush(30) == 0
        code, log = exit_of(w)
    assert code == EXIT_STUCK, log
    assert f"topic {dlq!r} refused" in log and "cleanup.policy includes compact" in log, log


def test_batches_are_sized_to_a_small_max_message_bytes(
    kafka_bootstrap,
    worker_topics,
    new_topic,
    mahalanobis_artifact,
    kdd_stream,
    read_topic,
    tmp_path,
):
    """Each record fits the scores topic's 40 kB, a batch of them does not (librdkafka's
    batch.size is 1 MB and it does not split a refused batch): the worker sizes its batches
    to the topic, and every record is scored once."""
    _, path = mahalanobis_artifact
    scores = new_topic(prefix="scores", config={"max.message.bytes": "40000"})
    env = worker_env(
        {**worker_topics, "STREAM_OD_SCORES_TOPIC": scores},
        kafka_bootstrap,
        path,
        STREAM_OD_MAX_OUTPUT_BYTES="16384",
        STREAM_OD_MAX_RECORD_BYTES="8192",
        STREAM_OD_MAX_BATCH_ATTEMPTS="3",
    )
    topic, group = env["STREAM_OD_INPUT_TOPIC"], env["STREAM_OD_GROUP_ID"]
    produce(kdd_stream, topic=topic, bootstrap_servers=kafka_bootstrap)
    with WorkerProcess(env, tmp_path / "w.log").start() as w:
        wait_consumed(kafka_bootstrap, group, topic, w, timeout=180)
        assert w.terminate() == 0, w.log()
        log = w.log()
    assert "producer batch.size 40000" in log, log
    assert sorted(by_seq(read_topic(scores))) == list(range(len(kdd_stream)))


def test_a_windows_stage_moves_old_timestamps_inside_its_topics_limits(
    kafka_bootstrap, new_topic, zeek_windows_artifact, zeek_replay_path, read_topic, tmp_path
):
    """The stage topic takes timestamps up to an hour old; the sensor's records are two days
    old (a backlog, a replay): each goes through with a timestamp the topic accepts."""
    _, path = zeek_windows_artifact
    sensor = new_topic(partitions=1, prefix="sensor")
    stage_topic = new_topic(prefix="stage", config={"message.timestamp.before.max.ms": "3600000"})
    env = {
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_INPUT_TOPIC": sensor,
        "STREAM_OD_GROUP_ID": f"stage-{uuid.uuid4()}",
        "STREAM_OD_INSTANCE_ID": uuid.uuid4().hex[:8],
        "STREAM_OD_DEAD_LETTER_TOPIC": new_topic(prefix="dlq"),
        "STREAM_OD_WINDOWS_STAGE_TOPIC": stage_topic,
        "STREAM_OD_WINDOWS_STAGE_ROLES": '["src"]',
        "STREAM_OD_MAX_BATCH_ATTEMPTS": "3",
    }
    values = log_stream([zeek_replay_path], schema="zeek-conn-windows").values[:300]
    two_days_ago = int(time.time() * 1000) - 2 * 86_400_000
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i, value in enumerate(values):
        producer.produce(sensor, value=value, timestamp=two_days_ago + i)
    assert producer.flush(30) == 0
    with WorkerProcess(env, tmp_path / "w.log").start() as w:
        wait_consumed(kafka_bootstrap, env["STREAM_OD_GROUP_ID"], sensor, w, timeout=120)
        assert w.terminate() == 0, w.log()
    out = read_topic(stage_topic)
    assert len(out) == len(values)
    hour_ago = int(time.time() * 1000) - 3_600_000
    assert all(m.timestamp()[1] > hour_ago for m in out)
    assert [orjson.loads(m.value())["uid"] for m in out] == [orjson.loads(v)["uid"] for v in values]


def test_an_output_topic_deleted_for_good_is_named_when_the_wait_ends(
    kafka_bootstrap, worker_topics, mahalanobis_artifact, kdd_stream, tmp_path
):
    """Records for a deleted topic time out like records for brokers that are away; once
    kafka_retry_timeout_s is over, the worker says which topic is gone (exit 3), not that the
    brokers may be down."""
    _, path = mahalanobis_artifact
    env = worker_env(worker_topics, kafka_bootstrap, path, STREAM_OD_KAFKA_RETRY_TIMEOUT_S="10")
    scores = env["STREAM_OD_SCORES_TOPIC"]
    with WorkerProcess(env, tmp_path / "w.log").start() as w:
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        for future in admin.delete_topics([scores]).values():
            future.result(30)
        produce(kdd_stream, topic=env["STREAM_OD_INPUT_TOPIC"], bootstrap_servers=kafka_bootstrap)
        code, log = exit_of(w, 240)
    assert code == EXIT_STUCK, log
    assert f"topic {scores!r} does not exist (STREAM_OD_SCORES_TOPIC)" in log, log
