"""librdkafka configurations for the worker's consumer and producer, derived from settings."""

from __future__ import annotations

import hashlib
from typing import Any

from confluent_kafka import Consumer, Producer

from stream_od.config import WorkerSettings

#: A reader of state (the suppression changelog, a partition's tail) reads to an end and stops.
#: With librdkafka's defaults it learnt of the end slowly: the broker holds a fetch that finds
#: nothing new for ``fetch.wait.max.ms`` (500 ms), and ``consume()`` waits out its whole timeout
#: unless the batch fills, so each partition's changelog took 1.5 s to read back, and a worker
#: handed twelve partitions in a rebalance waited 18 s before its first batch
#: (``benchmarks/changelog_restore.py``).
STATE_READER = {"fetch.wait.max.ms": 50}
STATE_POLL_S = 0.05  # the reader's consume() timeout


def transactional_id(settings: WorkerSettings) -> str:
    """Stable per worker instance, so a restarted worker fences its crashed predecessor and
    aborts the transaction it left open at once (instead of after transaction_timeout_ms)."""
    return f"{settings.transactional_id_prefix}-{settings.group_id}-{settings.instance_id}"


def group_instance_id(settings: WorkerSettings) -> str:
    """The static member id (KIP-345): the instance id, and a digest of the input topic.

    A static member that rejoins a stable group is handed its previous assignment without a
    rebalance, even when it now subscribes to another topic (the classic protocol compares the
    protocol's name only, KAFKA-12759), and librdkafka takes what it is handed: a worker
    restarted on a new ``input_topic`` under its old id read its old topic's partitions and
    never the new one.  With the topic in the id, a new topic is a new member, so the group
    rebalances (once the old id's session, 45 s, has run out) and hands it the new topic."""
    digest = hashlib.sha256(settings.input_topic.encode()).hexdigest()[:8]
    return f"{settings.instance_id}-{digest}"


def restore_group_id(settings: WorkerSettings) -> str:
    """The group of the worker's assign-only readers of state (the suppression changelog, the
    input read back to rebuild traffic windows): never joined, never committed to, but the
    client looks up its coordinator, so a secured cluster must grant DESCRIBE on it."""
    return f"{settings.group_id}.restore"


def consumer_config(settings: WorkerSettings) -> dict[str, Any]:
    own: dict[str, Any] = {
        "group.id": settings.group_id,
        "client.id": f"stream-od-{settings.instance_id}",
        # Offsets are committed with the batch's output (exactly-once) or after it is
        # produced (at-least-once), never in the background.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Input written by transactional producers: never read what they aborted.
        "isolation.level": "read_committed",
        "max.poll.interval.ms": settings.max_poll_interval_ms,
        "enable.partition.eof": False,
    }
    if settings.group_protocol == "consumer":
        own["group.protocol"] = "consumer"  # KIP-848: the broker assigns partitions
    else:
        own["partition.assignment.strategy"] = "cooperative-sticky"
        if settings.static_membership:
            own["group.instance.id"] = group_instance_id(settings)
    return settings.client_config({**own, **settings.consumer})


def producer_config(settings: WorkerSettings) -> dict[str, Any]:
    own: dict[str, Any] = {
        "client.id": f"stream-od-{settings.instance_id}",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # A transaction begun right after the last one committed finds the coordinator still
        # writing that one's markers: AddOffsetsToTxn answers CONCURRENT_TRANSACTIONS and
        # librdkafka retries after retry.backoff.ms, 100 ms by default, which is what a record
        # waited at the p99 (benchmarks/results/txn_backoff.json).  10 ms, doubling up to
        # retry.backoff.max.ms (1 s) for errors that persist.
        "retry.backoff.ms": 10,
    }
    if settings.processing_guarantee == "exactly_once":
        own["transactional.id"] = transactional_id(settings)
        own["transaction.timeout.ms"] = settings.transaction_timeout_ms
    return settings.client_config({**own, **settings.producer})


def make_consumer(settings: WorkerSettings) -> Consumer:
    return Consumer(consumer_config(settings))


def make_producer(settings: WorkerSettings, on_error=None) -> Producer:
    """``on_error(err, msg)`` is called for each record the producer failed to deliver
    (only for failures: no per-record Python callback on the hot path)."""
    config = producer_config(settings)
    if on_error is not None:
        config |= {"on_delivery": on_error, "delivery.report.only.error": True}
    return Producer(config)


# -- the other jobs' clients: every Kafka client of the project is built in this module ----------
def models_producer(config: dict[str, Any], message_bytes: int) -> Producer:
    """The publisher of the models topic: idempotent, acknowledged by every in-sync replica,
    sized for a packed artifact, sent at once (one message per publish)."""
    return Producer(
        {
            **config,
            "acks": "all",
            "enable.idempotence": True,
            "message.max.bytes": message_bytes,
            "linger.ms": 0,
        }
    )


def models_consumer(config: dict[str, Any], group_id: str, message_bytes: int) -> Consumer:
    """A reader of the models topic that assigns its partition itself (it never joins
    ``group_id`` nor commits), sized for messages at the size limit."""
    return Consumer(
        {
            **config,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": False,
            "fetch.max.bytes": message_bytes * 2,
            "max.partition.fetch.bytes": message_bytes,
            "receive.message.max.bytes": message_bytes * 2 + 1024 * 1024,
        }
    )


def reader_consumer(config: dict[str, Any], group_id: str) -> Consumer:
    """A reader of a topic from its start (``train --data-topic``): committed records only,
    no offsets committed."""
    return Consumer(
        {
            **config,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": False,
        }
    )


def plain_producer(config: dict[str, Any]) -> Producer:
    """A producer with exactly ``config`` (``stream-od replay``'s, built by its own rules)."""
    return Producer(config)
