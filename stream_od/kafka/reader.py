"""Read a topic from the start to its current end (for the demo, benchmarks and tests)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition


def read_to_end(bootstrap: str, topic: str, *, isolation: str = "read_committed",
                timeout: float = 60.0, config: dict | None = None) -> list[Message]:
    """Read every record of ``topic`` from the start to the end as it is now.

    "The end" is each partition's high watermark taken when the call starts (for read_committed,
    the consumer stops at the last stable offset, so aborted and control records are skipped but
    the position still reaches the watermark once every transaction below it is decided).
    ``config``: more librdkafka settings (security, from ``cli_kafka_config``).
    """
    consumer = Consumer({
        **(config or {}),
        "bootstrap.servers": bootstrap,
        "group.id": f"stream-od-reader-{uuid.uuid4().hex[:12]}",
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
