"""Scale-out: workers join and leave one consumer group mid-stream without loss or duplicates."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.integration.test_worker_stream import by_seq
from tests.kafka_support import group_done
from tests.worker_support import WorkerProcess, metric_total, metric_values
from trainer.replay import Encoded, produce


def feed_in_two_halves(stream: Encoded, topic: str, bootstrap: str, second: threading.Event):
    """The first half of ``stream`` at 2,500 records/s, the second at that rate once
    ``second`` is set (or after 120 s, so that a failed test still ends)."""
    half = len(stream) // 2
    for start, stop in ((0, half), (half, len(stream))):
        if start:
            second.wait(120)
        part = Encoded(values=stream.values[start:stop], labels=stream.labels[start:stop])
        produce(part, topic=topic, bootstrap_servers=bootstrap, rate=2_500.0, start_seq=start)


# classic: cooperative-sticky; consumer: KIP-848.  With overlapped commits, batches of 20 are
# full at this rate, so commits are in flight when the rebalances come.
@pytest.mark.parametrize(
    ("protocol", "overlap"), [("classic", False), ("consumer", False), ("classic", True)]
)
def test_a_second_worker_joins_and_the_first_leaves_mid_stream(
    kafka_bootstrap,
    worker_topics,
    mahalanobis_artifact,
    kdd_stream,
    read_topic,
    tmp_path,
    protocol,
    overlap,
):
    _, path = mahalanobis_artifact
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_GROUP_PROTOCOL": protocol,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_MAX_BATCH_RECORDS": "20" if overlap else "200",
        "STREAM_OD_OVERLAP_COMMITS": str(overlap).lower(),
    }
    topic, group = env["STREAM_OD_INPUT_TOPIC"], env["STREAM_OD_GROUP_ID"]
    # The second half of the stream waits for b to hold a partition: on a slow machine b's
    # start and the rebalance can outlast a stream sent at a fixed rate, and b, handed
    # partitions a has already drained, would then have nothing to score.
    b_assigned = threading.Event()
    feeder = threading.Thread(
        target=feed_in_two_halves,
        args=(kdd_stream, topic, kafka_bootstrap, b_assigned),
        daemon=True,
    )
    a = WorkerProcess(
        {**env, "STREAM_OD_INSTANCE_ID": "a-" + uuid.uuid4().hex[:6]}, tmp_path / "a.log"
    ).start()
    b = WorkerProcess(
        {**env, "STREAM_OD_INSTANCE_ID": "b-" + uuid.uuid4().hex[:6]}, tmp_path / "b.log"
    )
    with a, b:
        feeder.start()
        a.wait_for("stream_od_records_scored_total", 2_000)
        b.start()
        # Incremental rebalancing: b gets some of the 3 partitions while a keeps the rest.
        deadline = time.monotonic() + 60
        while metric_total(b.metrics(), "stream_od_assigned_partitions") == 0:
            assert time.monotonic() < deadline, b.log()
            time.sleep(0.2)
        b_assigned.set()
        b.wait_for("stream_od_records_scored_total", 500)
        text_a = a.metrics()
        assert (
            metric_total(text_a, "stream_od_assigned_partitions")
            + metric_total(b.metrics(), "stream_od_assigned_partitions")
            == 3
        )
        assert metric_values(text_a, "stream_od_rebalances_total")['{kind="revoke"}'] >= 1
        assert a.terminate() == 0, a.log()  # a leaves; b takes over its partitions
        feeder.join(60)
        # A static member (classic protocol) that left holds its partitions until its session
        # times out (45 s): the price of getting them back at once after a crash.
        deadline = time.monotonic() + 120
        while metric_total(b.metrics(), "stream_od_assigned_partitions") < 3:
            assert time.monotonic() < deadline, b.log()
            time.sleep(0.5)
        while not group_done(kafka_bootstrap, group, topic):
            assert time.monotonic() < deadline, b.log()
            time.sleep(0.5)
        assert b.terminate() == 0, b.log()

    scores = by_seq(read_topic(env["STREAM_OD_SCORES_TOPIC"]))  # fails on any duplicate
    assert sorted(scores) == list(range(len(kdd_stream)))
