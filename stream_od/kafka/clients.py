"""librdkafka configurations for the worker's consumer and producer, derived from settings."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer

from stream_od.config import WorkerSettings


def transactional_id(settings: WorkerSettings) -> str:
    """Stable per worker instance, so a restarted worker fences its crashed predecessor and
    aborts the transaction it left open at once (instead of after transaction_timeout_ms)."""
    return f"{settings.transactional_id_prefix}-{settings.group_id}-{settings.instance_id}"


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
            own["group.instance.id"] = settings.instance_id
    return settings.client_config({**settings.consumer, **own})


def producer_config(settings: WorkerSettings) -> dict[str, Any]:
    own: dict[str, Any] = {
        "client.id": f"stream-od-{settings.instance_id}",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
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
