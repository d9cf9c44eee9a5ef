"""Helpers for tests that talk to the real local broker (see tests/conftest.py for fixtures)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                            config=config or {})])
    futures[name].result(timeout=30)
    # Metadata propagates asynchronously even on one broker: wait until every partition has a leader.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        meta = admin.list_topics(name, timeout=5).topics.get(name)
        if meta and meta.error is None and len(meta.partitions) == partitions and all(
            p.leader >= 0 for p in meta.partitions.values()
        ):
            return name
        time.sleep(0.1)
    raise TimeoutError(f"topic {name} has no leaders after 30 s")


def delete_topics(bootstrap: str, names: list[str]) -> None:
    if not names:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(names, operation_timeout=10).values():
        try:
            future.result(timeout=30)
        except KafkaException:
            pass  # already gone


def read_to_end(bootstrap: str, topic: str, *, isolation: str = "read_committed",
                timeout: float = 60.0) -> list[Message]:
    """Read every record of ``topic`` from the start to the end as it is now.

    "The end" is each partition's high watermark taken when the call starts (for read_committed,
    the consumer stops at the last stable offset, so aborted and control records are skipped but
    the position still reaches the watermark once every transaction below it is decided).
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique_name("reader"),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": isolation,
        "enable.partition.eof": False,
    })
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = sorted(meta.partitions)
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while True:
            positions = {tp.partition: tp.offset for tp in consumer.position(
                [TopicPartition(topic, p) for p in partitions])}
            if all(ends[p] == 0 or positions.get(p, -1) >= ends[p] for p in partitions):
                return out
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(out)} records of {topic}; positions {positions}, ends {ends}")
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                if msg.error() is not None:
                    raise KafkaException(msg.error())
                out.append(msg)
    finally:
        consumer.close()
