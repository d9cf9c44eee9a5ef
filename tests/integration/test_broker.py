"""The local broker itself: plain produce/consume at volume, and transactions."""

from __future__ import annotations

from confluent_kafka import Producer

from tests.kafka_support import unique_name


def test_ten_thousand_records_round_trip(kafka_bootstrap, new_topic, read_topic):
    topic = new_topic(partitions=3)
    # Idempotence is what keeps per-key order across retries (max in flight > 1).
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    sent = [f"record-{i}".encode() for i in range(10_000)]
    for i, value in enumerate(sent):
        producer.produce(topic, value=value, key=str(i % 97).encode())
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0

    received = read_topic(topic, isolation="read_uncommitted")

    assert len(received) == 10_000
    assert sorted(m.value() for m in received) == sorted(sent)
    # Per-key order is kept within a partition.
    by_key: dict[bytes, list[int]] = {}
    for m in received:
        by_key.setdefault(m.key(), []).append(int(m.value().split(b"-")[1]))
    assert all(seq == sorted(seq) for seq in by_key.values())


def test_read_committed_sees_committed_not_aborted(kafka_bootstrap, new_topic, read_topic):
    topic = new_topic(partitions=2)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": unique_name("txn")}
    )
    producer.init_transactions(30)

    producer.begin_transaction()
    for i in range(100):
        producer.produce(topic, value=f"committed-{i}".encode())
    producer.commit_transaction(30)

    producer.begin_transaction()
    for i in range(50):
        producer.produce(topic, value=f"aborted-{i}".encode())
    producer.flush(30)  # the aborted records really reach the log before the abort
    producer.abort_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, value=b"committed-last")
    producer.commit_transaction(30)

    committed = [m.value() for m in read_topic(topic, isolation="read_committed")]
    everything = [m.value() for m in read_topic(topic, isolation="read_uncommitted")]

    assert len(committed) == 101
    assert not any(v.startswith(b"aborted") for v in committed)
    assert sum(v.startswith(b"aborted") for v in everything) == 50
    assert len(everything) == 151
