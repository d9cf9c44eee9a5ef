"""A model with other traffic windows, swapped in on a running worker, on the real broker.

The new model's windows must be built from each partition's records before the worker goes on,
as a worker started with it would have them; built in place, every partition's at once, they
kept the loop from its group for as long as all the rebuilds took, and past
``max.poll.interval.ms`` the member was thrown out of the group.  Here each partition's tail is
read in chunks slowed so that the rebuilds together outlast ``max.poll.interval.ms``: the worker
must keep its partitions, score every record once, the first half as the old model scores it
offline and the second as the new one does, its windows over all of the records before.  One
partition has had no record since the worker was assigned it, so librdkafka gives it no
position: its windows must still be rebuilt, from its committed offset.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import numpy as np
import orjson
import pytest
from prometheus_client import generate_latest

from stream_od.config import load_settings
from stream_od.kafka import tail
from stream_od.metrics import WorkerMetrics
from stream_od.records import RecordDecoder
from stream_od.worker import Worker
from tests.integration.test_worker_rebuild_rebalance import (
    PARTITIONS,
    lost,
    produce_to,
    scored,
    wait_for,
)
from tests.worker_support import metric_values
from trainer.replay import log_stream

CHUNK = 100  # records of a partition's tail read at a time
SLOW_S = 1.5  # each chunk: the three partitions' 1,200 records take about 20 s in all
MAX_POLL_MS = 10_000


@pytest.mark.timeout(300)
def test_a_swap_to_other_windows_builds_them_in_the_loop_and_scores_as_offline(
    kafka_bootstrap,
    worker_topics,
    zeek_mahalanobis_artifact,
    zeek_windows_artifact,
    monkeypatch,
    read_topic,
):
    from tests.integration.conftest import ZEEK_TRAIN

    plain, windowed = zeek_mahalanobis_artifact[0], zeek_windows_artifact[0]
    stream = log_stream([ZEEK_TRAIN], schema="zeek-conn-windows")
    first_ts = orjson.loads(stream.values[0])["ts"]  # 100 a second: all within the windows' reach
    values = [
        orjson.dumps({**orjson.loads(v), "ts": first_ts + i / 100})
        for i, v in enumerate(stream.values[:2_400])
    ]
    # A first worker scores the first third.  A second is assigned every partition and scores
    # records of partitions 0 and 1 only; the new model arrives with a batch of those two
    # (so partition 2 is neither read from nor in the batch); then records of every partition.
    third, swap = len(values) // 3, len(values) // 2
    every = swap + 100
    parts = [i % PARTITIONS if i < third or i >= every else i % 2 for i in range(len(values))]
    records = [orjson.loads(v) for v in values]
    before = plain.score(RecordDecoder(plain.schema).encode_records(records).X)
    X = RecordDecoder(windowed.schema).encode_records(records, streams=parts).X
    after = windowed.score(X)
    count = windowed.schema.feature_names.index("win.dst.n_count")
    assert X[swap:, count].max() > np.log1p(50)  # the windows are full: this tests something

    topic = worker_topics["STREAM_OD_INPUT_TOPIC"]
    scores_topic = worker_topics["STREAM_OD_SCORES_TOPIC"]
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap,
        input_topic=topic,
        alerts_topic=worker_topics["STREAM_OD_ALERTS_TOPIC"],
        dead_letter_topic=worker_topics["STREAM_OD_DEAD_LETTER_TOPIC"],
        scores_topic=scores_topic,
        group_id=f"swap-{uuid.uuid4().hex[:8]}",
        metrics_port=0,
        max_poll_interval_ms=MAX_POLL_MS,
        consumer={"session.timeout.ms": 6000},
    )

    def start() -> tuple[Worker, threading.Thread]:
        worker = Worker(settings, plain, metrics=WorkerMetrics())
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        return worker, thread

    def done(n: int) -> Callable[[], bool]:
        return lambda: len(scored(scores_topic, read_topic)) == n

    first, thread = start()
    try:
        produce_to(values[:third], parts[:third], topic, kafka_bootstrap, 0)
        wait_for(done(third), 120, "the first third")
    finally:
        first.stop()
        thread.join(60)
    worker, thread = start()
    try:
        produce_to(values[third:swap], parts[third:swap], topic, kafka_bootstrap, third)
        wait_for(done(swap), 120, "the records before the swap")
        assert worker._assigned == {(topic, p) for p in range(PARTITIONS)}

        tail_chunks = tail.tail_chunks

        def slow_tail_chunks(*args, **kwargs):
            for chunk in tail_chunks(*args, **{**kwargs, "chunk": CHUNK}):
                time.sleep(SLOW_S)
                yield chunk

        monkeypatch.setattr(tail, "tail_chunks", slow_tail_chunks)
        worker.swap_model(windowed)
        produce_to(values[swap:every], parts[swap:every], topic, kafka_bootstrap, swap)
        wait_for(lambda: worker.metrics.model_swaps._value.get() == 1, 60, "the swap")
        produce_to(values[every:], parts[every:], topic, kafka_bootstrap, every)
        wait_for(done(len(values)), 180, "the rest")
        assert lost(worker) == 0  # the group was served through the rebuilds
    finally:
        worker.stop()
        thread.join(60)
    assert not thread.is_alive()
    got = scored(scores_topic, read_topic)  # fails on a duplicate
    assert sorted(got) == list(range(len(values)))
    scores = np.array([got[i]["score"] for i in range(len(values))])
    np.testing.assert_array_equal(scores[:swap], before[:swap])
    idle = [i for i in range(swap, len(values)) if parts[i] == 2]  # (before the fix: unequal)
    np.testing.assert_array_equal(scores[idle], after[idle])
    np.testing.assert_array_equal(scores[swap:], after[swap:])
    metrics = generate_latest(worker.metrics.registry).decode()
    restores = metric_values(metrics, "stream_od_state_restore_seconds_count")
    assert restores.get('{state="windows"}') == PARTITIONS  # each partition's, once
