"""Reading a state store's changelog partition back, for state that must survive a restart.

A changelog is a compacted topic written in the same transaction as the output and the input
offsets it goes with, so its committed records are exactly the state as of the committed
offsets (a dead owner's open transaction is past the last stable offset, where a
``read_committed`` reader stops).  Keys are text; a ``None`` value deletes its key.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from stream_od.kafka.clients import STATE_POLL_S, STATE_READER


def read_changelog(
    config: dict[str, Any], topic: str, partition: int, *, timeout_s: float
) -> list[tuple[str, bytes | None]]:
    """(key, value) of the committed records of ``topic[partition]``, in log order."""
    return read_changelogs(config, topic, [partition], timeout_s=timeout_s)[partition]


def read_changelogs(
    config: dict[str, Any], topic: str, partitions: Sequence[int], *, timeout_s: float
) -> dict[int, list[tuple[str, bytes | None]]]:
    """:func:`read_changelog` of each of ``partitions``, all read by one consumer at once: a
    worker given many partitions in a rebalance waits for one connection and one fetch
    round, not one per partition (``benchmarks/changelog_restore.py``)."""
    out: dict[int, list[tuple[str, bytes | None]]] = {p: [] for p in partitions}
    if not out:
        return out
    consumer = Consumer(
        {
            **config,
            **STATE_READER,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    left = set(out)
    deadline = time.monotonic() + timeout_s
    try:
        consumer.assign([TopicPartition(topic, p, -2) for p in out])  # OFFSET_BEGINNING
        while left:
            for msg in consumer.consume(num_messages=1_000, timeout=STATE_POLL_S):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        left.discard(msg.partition())
                        continue
                    raise KafkaException(err)
                key = msg.key()
                out[msg.partition()].append(  # type: ignore[index]
                    ("" if key is None else key.decode("utf-8", "replace"), msg.value())
                )
            if left and time.monotonic() > deadline:
                raise TimeoutError(
                    f"reading the changelog {topic}{sorted(left)} took over {timeout_s:g} s"
                )
    finally:
        consumer.close()
    return out


def ensure_changelog(
    client_config: dict[str, Any], topic: str, partitions: int, *, timeout: float = 30.0
) -> None:
    """Create the compacted changelog ``topic`` with ``partitions`` partitions when it is
    missing (the brokers' default replication); stop with what to fix when it has fewer
    partitions than the input (its partition *p* holds the state of input partition *p*)."""
    from confluent_kafka.admin import NewTopic

    from stream_od.errors import ConfigError
    from stream_od.kafka.topics import connect, have_leaders

    admin = connect(client_config, timeout=timeout)
    meta = admin.list_topics(timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        future = admin.create_topics(
            [
                NewTopic(
                    topic,
                    num_partitions=partitions,
                    replication_factor=-1,
                    config={"cleanup.policy": "compact"},
                )
            ]
        )[topic]
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ConfigError(
                    f"the suppression changelog topic {topic!r} does not exist "
                    f"and could not be created ({exc.args[0].str()}): create it "
                    f"compacted, with {partitions} partitions, or grant CREATE "
                    "on it"
                ) from exc
        if have_leaders(admin, [topic], timeout):
            return
        raise ConfigError(
            f"the suppression changelog topic {topic!r} has no leaders after {timeout:g} s"
        )
    if len(meta.partitions) < partitions:
        raise ConfigError(
            f"the suppression changelog topic {topic!r} has "
            f"{len(meta.partitions)} partitions, fewer than the input topic's "
            f"{partitions}: add partitions to it (kafka-topics --alter "
            f"--partitions {partitions})"
        )
