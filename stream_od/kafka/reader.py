"""Read a topic from the start to its current end (for the trainer, the demo, benchmarks and tests).

The reader assigns the partitions itself and never joins its consumer group or commits, but the
client still looks the group up, which a secured cluster authorizes (DESCRIBE on the group): the
group id is therefore fixed, not random, so that one LITERAL ACL covers it (docs/security.md).
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

#: The reader's consumer group unless the caller names one.
DEFAULT_GROUP = "stream-od.reader"


def read_to_end(
    bootstrap: str,
    topic: str,
    *,
    isolation: str = "read_committed",
    timeout: float = 60.0,
    config: dict | None = None,
    group_id: str = DEFAULT_GROUP,
) -> list[Message]:
    """Read every record of ``topic`` from the start to the end as it is now.

    "The end" is each partition's high watermark taken when the call starts (for read_committed,
    the consumer stops at the last stable offset, so aborted and control records are skipped but
    the position still reaches the watermark once every transaction below it is decided).
    ``config``: more librdkafka settings (security, from ``cli_kafka_config``); ``group_id``:
    the consumer group the client looks up (no offsets are ever committed to it).
    """
    consumer = Consumer(
        {
            **(config or {}),
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
            "enable.partition.eof": False,
        }
    )
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
            positions = {
                tp.partition: tp.offset
                for tp in consumer.position([TopicPartition(topic, p) for p in partitions])
            }
            if all(ends[p] == 0 or positions.get(p, -1) >= ends[p] for p in partitions):
                return out
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"read {len(out)} records of {topic}; positions {positions}, ends {ends}"
                )
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    raise KafkaException(explain_error(err, group_id))
                out.append(msg)
    finally:
        consumer.close()


def explain_error(err: KafkaError, group_id: str) -> KafkaError:
    """A group authorization error that names the group (librdkafka's text does not)."""
    if err.code() != KafkaError.GROUP_AUTHORIZATION_FAILED:
        return err
    return KafkaError(
        err.code(),
        f"not authorized on consumer group {group_id!r}: grant DESCRIBE "
        f"on Group:{group_id} to this client's user (docs/security.md)",
    )
