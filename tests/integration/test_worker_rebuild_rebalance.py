"""A worker rebuilding its partitions' traffic windows stays in its group while others join.

A rebuild reads up to an hour of each partition back (docs/windows.md), which can take minutes
on a busy topic.  Done inside the assignment callback, it kept the member from answering a
rebalance: when a second worker joined meanwhile (a scale-up), the group's rebalance timeout
(``max.poll.interval.ms``) ran out, the first worker was thrown out of the group and lost its
partitions, and a new rebalance began; a partition whose rebuild alone took longer could never
be taken at all.  Here each partition's tail is read in chunks of ``CHUNK`` records, each slowed
by ``SLOW_S``, so that every partition's rebuild alone takes longer than
``max.poll.interval.ms``; the first worker must keep its membership while the second joins, and
every record must be scored once.  Two workers in this process, on the real broker.
"""

from __future__ import annotations

import threading
import time
import uuid

import orjson
import pytest
from confluent_kafka import Producer
from prometheus_client import generate_latest

from stream_od.config import load_settings
from stream_od.kafka import tail
from stream_od.metrics import WorkerMetrics
from stream_od.worker import Worker
from tests.integration.test_worker_stream import by_seq
from tests.worker_support import metric_values
from trainer.replay import log_stream

PARTITIONS = 3
CHUNK = 100  # records of a partition's tail read at a time
SLOW_S = 2.5  # each chunk: ~500 records a partition take 12.5 s, over max.poll.interval.ms
MAX_POLL_MS = 10_000


def produce(values: list[bytes], topic: str, bootstrap: str, start: int) -> None:
    """Records spread evenly over the partitions, each with its sequence number in its key."""
    parts = [i % PARTITIONS for i in range(start, start + len(values))]
    produce_to(values, parts, topic, bootstrap, start)


def produce_to(values: list[bytes], parts: list[int], topic: str, bootstrap: str, start: int):
    """``values[i]`` into partition ``parts[i]``, keyed by its sequence number."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i, (value, part) in enumerate(zip(values, parts), start):
        producer.produce(topic, value=value, key=str(i).encode(), partition=part)
        producer.poll(0)
    assert producer.flush(60) == 0


def scored(topic: str, read_topic) -> dict[int, dict]:
    return by_seq(read_topic(topic))


def lost(worker: Worker) -> float:
    text = generate_latest(worker.metrics.registry).decode()
    return metric_values(text, "stream_od_rebalances_total").get('{kind="lost"}', 0.0)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("protocol", ["classic", "consumer"])  # cooperative-sticky; KIP-848
def test_a_slow_rebuild_keeps_its_partitions_while_a_second_worker_joins(
    kafka_bootstrap, worker_topics, zeek_windows_artifact, monkeypatch, read_topic, protocol
):
    from tests.integration.conftest import ZEEK_TRAIN

    artifact, _ = zeek_windows_artifact
    stream = log_stream([ZEEK_TRAIN], schema="zeek-conn-windows")
    # 100 records a second: the whole first half is within the windows' reach, so each
    # partition's next owner reads all of its ~500 records back
    first_ts = orjson.loads(stream.values[0])["ts"]
    values = [
        orjson.dumps({**orjson.loads(v), "ts": first_ts + i / 100})
        for i, v in enumerate(stream.values[:3_000])
    ]
    half = len(values) // 2
    topic = worker_topics["STREAM_OD_INPUT_TOPIC"]
    group = f"rebuild-{uuid.uuid4().hex[:8]}"

    def settings(instance: str):
        return load_settings(
            bootstrap_servers=kafka_bootstrap,
            input_topic=topic,
            alerts_topic=worker_topics["STREAM_OD_ALERTS_TOPIC"],
            dead_letter_topic=worker_topics["STREAM_OD_DEAD_LETTER_TOPIC"],
            scores_topic=worker_topics["STREAM_OD_SCORES_TOPIC"],
            group_id=group,
            instance_id=instance,
            metrics_port=0,
            max_poll_interval_ms=MAX_POLL_MS,
            group_protocol=protocol,
            # KIP-848 sets the session on the broker side
            consumer={} if protocol == "consumer" else {"session.timeout.ms": 6000},
        )

    def start(instance: str) -> tuple[Worker, threading.Thread]:
        worker = Worker(settings(instance), artifact, metrics=WorkerMetrics())
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        return worker, thread

    def stop(worker: Worker, thread: threading.Thread) -> None:
        worker.stop()
        thread.join(60)
        assert not thread.is_alive()

    # A first run leaves committed offsets behind: the next owner of each partition rebuilds.
    produce(values[:half], topic, kafka_bootstrap, 0)
    first = start("a")
    scores_topic = worker_topics["STREAM_OD_SCORES_TOPIC"]
    wait_for(lambda: len(scored(scores_topic, read_topic)) == half, 120, "the first half scored")
    stop(*first)

    tail_chunks = tail.tail_chunks
    rebuilding = threading.Event()

    def slow_tail_chunks(*args, **kwargs):
        for values in tail_chunks(*args, **{**kwargs, "chunk": CHUNK}):
            rebuilding.set()
            time.sleep(SLOW_S)
            yield values

    monkeypatch.setattr(tail, "tail_chunks", slow_tail_chunks)
    a = start("a")
    assert rebuilding.wait(60), "the worker did not rebuild its windows"
    b = start("b")  # joins while the first is rebuilding
    produce(values[half:], topic, kafka_bootstrap, half)
    wait_for(lambda: len(scored(scores_topic, read_topic)) == len(values), 180, "every record")
    # the partitions were shared out, and nobody was thrown out of the group
    wait_for(lambda: a[0]._assigned and b[0]._assigned, 60, "both workers to hold partitions")
    assert lost(a[0]) == 0 and lost(b[0]) == 0
    stop(*a)
    stop(*b)
    got = scored(scores_topic, read_topic)  # fails on a duplicate
    assert sorted(got) == list(range(len(values)))
