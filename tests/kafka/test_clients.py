"""The worker's librdkafka configurations (pure logic: no broker)."""

from __future__ import annotations

from confluent_kafka import Producer

from stream_od.config import load_settings
from stream_od.kafka import clients


def test_the_producer_retries_a_coordinator_still_writing_markers_soon():
    """A transaction begun right after a commit is answered CONCURRENT_TRANSACTIONS until the
    markers are written; librdkafka's default 100 ms backoff was the p99 of the stream
    (benchmarks/txn_backoff.py).  librdkafka itself must accept the setting."""
    config = clients.producer_config(load_settings(metrics_port=0))
    assert config["retry.backoff.ms"] == 10
    assert config["transactional.id"] and config["enable.idempotence"] is True
    Producer({**config, "bootstrap.servers": "127.0.0.1:1"})  # librdkafka parses it


def test_an_operators_producer_setting_wins():
    settings = load_settings(metrics_port=0, producer={"retry.backoff.ms": 50, "linger.ms": 1})
    config = clients.producer_config(settings)
    assert config["retry.backoff.ms"] == 50 and config["linger.ms"] == 1
