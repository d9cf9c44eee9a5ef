"""Traffic windows survive crashes and rebalances: kill -9 three times mid-stream, then a
rebalance from one worker to three and back, on a topic keyed by the responder's address; the
scores are those of offline scoring of the same records, each partition's windows computed from
that partition's records (what an uninterrupted worker computes), bit for bit."""

from __future__ import annotations

import threading
import time
import uuid
import zlib

import numpy as np
import orjson
from confluent_kafka import Producer

from stream_od.records import RecordDecoder
from tests.integration.test_worker_stream import by_seq
from tests.worker_support import WorkerProcess, metric_total, metric_values, wait_consumed
from trainer.replay import log_stream

PARTITIONS = 3


def partition_of(record: dict) -> int:
    """Keyed by the responder's address, as a sensor topic keyed by host would be."""
    return zlib.crc32(str(record.get("id.resp_h")).encode()) % PARTITIONS


def feed(
    values: list[bytes],
    parts: list[int],
    topic: str,
    bootstrap: str,
    rate: float,
    gates: dict[int, threading.Event] | None = None,
) -> None:
    """``values`` at ``rate`` records/s into the given partitions; before record ``i`` of
    ``gates`` it waits for that event (at most 120 s, so a failed test still ends), so a part of
    the stream is left for a worker a test starts later: on a slow machine, worker starts and
    rebalances can outlast a stream sent at a fixed rate, and a worker handed drained partitions
    would have nothing to score."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    t0 = time.perf_counter()
    for i, (value, part) in enumerate(zip(values, parts)):
        if gates and i in gates:
            producer.flush(60)
            gates[i].wait(120)
            t0 = time.perf_counter() - i / rate  # the rate goes on from here, no burst
        ahead = i / rate - (time.perf_counter() - t0)
        if ahead > 0.002:
            producer.poll(0)
            time.sleep(ahead)
        producer.produce(
            topic,
            value=value,
            key=str(i).encode(),
            partition=part,
            headers=[("seq", str(i).encode())],
        )
    assert producer.flush(60) == 0


def test_windows_are_rebuilt_after_kill_nine_and_rebalances(
    kafka_bootstrap,
    worker_topics,
    new_topic,
    zeek_windows_artifact,
    zeek_replay_path,
    read_topic,
    tmp_path,
):
    artifact, path = zeek_windows_artifact
    stream = log_stream([zeek_replay_path], schema="zeek-conn-windows")
    records = [orjson.loads(v) for v in stream.values]
    parts = [partition_of(r) for r in records]
    assert len(set(parts)) == PARTITIONS
    decoder = RecordDecoder(artifact.schema)
    X = decoder.encode_records(records, streams=parts).X
    expected = artifact.score(X)
    count = artifact.schema.feature_names.index("win.dst.n_count")
    assert X[:, count].max() > np.log1p(50)  # the windows fill: this tests something

    topic = new_topic(partitions=PARTITIONS, prefix="win")
    env = {
        **worker_topics,
        "STREAM_OD_INPUT_TOPIC": topic,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_MAX_BATCH_RECORDS": "50",
        "STREAM_OD_MAX_BATCH_WAIT_MS": "20",
        "STREAM_OD_CONSUMER": '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}',
    }
    group = env["STREAM_OD_GROUP_ID"]
    # The last quarter waits for the two workers that join at the end, and holds records of
    # every partition, so each of them has records to score whatever it is handed.
    tail = 3 * len(parts) // 4
    assert set(parts[tail:]) == set(range(PARTITIONS))
    others_assigned = threading.Event()
    feeder = threading.Thread(
        target=feed,
        daemon=True,
        args=(stream.values, parts, topic, kafka_bootstrap, 150.0, {tail: others_assigned}),
    )
    feeder.start()
    log = tmp_path / "worker.log"
    restored = rebuilds = 0.0
    for _ in range(3):
        with WorkerProcess(env, log).start() as w:
            w.wait_for("stream_od_records_scored_total", 300, timeout=120)
            text = w.metrics()
            restored += metric_total(text, "stream_od_window_restored_records_total")
            # the wait for each partition's rebuild is measured (a dashboard shows it)
            rebuilds += metric_values(text, "stream_od_state_restore_seconds_count").get(
                '{state="windows"}', 0.0
            )
            w.kill()
    with WorkerProcess(env, log).start() as first:
        first.wait_for("stream_od_records_scored_total", 300, timeout=120)
        others = [
            WorkerProcess(
                {**env, "STREAM_OD_INSTANCE_ID": uuid.uuid4().hex[:8]}, tmp_path / f"other{i}.log"
            ).start()
            for i in range(2)
        ]
        for other in others:  # one to three: each takes partitions and rebuilds their windows
            other.wait_for("stream_od_assigned_partitions", 1, timeout=120)
        others_assigned.set()
        for other in others:
            other.wait_for("stream_od_records_scored_total", 1, timeout=120)
        restored += sum(
            metric_total(o.metrics(), "stream_od_window_restored_records_total") for o in others
        )
        for other in others:  # and back to one
            assert other.terminate() == 0, other.log()
        feeder.join(120)
        wait_consumed(kafka_bootstrap, group, topic, first, timeout=180)
        restored += metric_total(first.metrics(), "stream_od_window_restored_records_total")
        assert first.terminate() == 0, first.log()

    assert restored > 0 and rebuilds > 0  # windows were rebuilt, not started empty
    got = by_seq(read_topic(env["STREAM_OD_SCORES_TOPIC"]))  # fails on a duplicate
    assert sorted(got) == list(range(len(records)))
    scores = np.array([got[i]["score"] for i in range(len(records))])
    np.testing.assert_array_equal(scores, expected)
