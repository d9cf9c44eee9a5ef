"""The worker's librdkafka configurations (pure logic: no broker)."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer

from stream_od.config import load_settings
from stream_od.errors import ConfigError
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


def test_an_operators_consumer_setting_wins_over_the_workers_defaults():
    """A SOC starting a new group at the head of a busy topic sets auto.offset.reset=latest;
    it used to be overridden without a word by the worker's own 'earliest'."""
    settings = load_settings(
        metrics_port=0, consumer={"auto.offset.reset": "latest", "client.id": "soc-a"}
    )
    config = clients.consumer_config(settings)
    assert config["auto.offset.reset"] == "latest" and config["client.id"] == "soc-a"
    assert config["enable.auto.commit"] is False and config["isolation.level"] == "read_committed"
    Consumer({**config, "bootstrap.servers": "127.0.0.1:1"}).close()  # librdkafka parses it


@pytest.mark.parametrize(
    ("client", "key", "instead"),
    [
        ("consumer", "max.poll.interval.ms", "STREAM_OD_MAX_POLL_INTERVAL_MS"),
        ("consumer", "partition.assignment.strategy", "STREAM_OD_GROUP_PROTOCOL"),
        ("consumer", "group.protocol", "STREAM_OD_GROUP_PROTOCOL"),
        ("kafka", "enable.partition.eof", "each of the worker's readers"),
        ("producer", "transaction.timeout.ms", "STREAM_OD_TRANSACTION_TIMEOUT_MS"),
    ],
)
def test_a_key_with_a_setting_of_its_own_is_refused_naming_the_setting(client, key, instead):
    """Passed through, these were overridden by the worker's own value (consumer) or went out
    of step with what other code reads (the producer's flush bound reads
    transaction_timeout_ms): refused, saying what to set."""
    with pytest.raises(ConfigError, match=f"{key} is set (through|by) {instead}"):
        load_settings(metrics_port=0, **{client: {key: 1}})


def test_the_static_member_id_changes_with_the_input_topic():
    """A static member rejoining under its old id keeps its old assignment whatever it now
    subscribes to (KAFKA-12759): a new input topic must be a new member."""
    a = load_settings(metrics_port=0, instance_id="worker-0", input_topic="zeek.conn")
    b = load_settings(metrics_port=0, instance_id="worker-0", input_topic="suricata.flow")
    ids = [clients.consumer_config(s)["group.instance.id"] for s in (a, a, b)]
    assert ids[0] == ids[1] and ids[0] != ids[2]  # stable across restarts, new per topic
    assert all(i.startswith("worker-0-") for i in ids)
    assert "group.instance.id" not in clients.consumer_config(
        load_settings(metrics_port=0, static_membership=False)
    )
    Consumer({**clients.consumer_config(a), "bootstrap.servers": "127.0.0.1:1"}).close()
