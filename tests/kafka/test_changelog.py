"""Reading changelog partitions back, on the real broker: committed records only, in log
order, each partition's own, all partitions by one consumer as by one consumer each."""

from __future__ import annotations

import uuid

from confluent_kafka import Producer

from stream_od.kafka.changelog import read_changelog, read_changelogs


def test_all_partitions_at_once_read_what_each_alone_reads(kafka_bootstrap, new_topic):
    topic = new_topic(partitions=4, prefix="changelog")
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"t-{uuid.uuid4()}"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(30):  # partition 3 stays empty
        producer.produce(topic, f"w{i}".encode(), key=f"k{i % 4}", partition=i % 3)
    producer.produce(topic, None, key="k0", partition=0)  # a closed window: a tombstone
    producer.commit_transaction(30)
    producer.begin_transaction()  # an aborted batch's changes are not state
    producer.produce(topic, b"aborted", key="k9", partition=1)
    producer.flush(30)
    producer.abort_transaction(30)

    config = {"bootstrap.servers": kafka_bootstrap, "group.id": f"g-{uuid.uuid4()}"}
    together = read_changelogs(config, topic, [0, 1, 2, 3], timeout_s=30)
    alone = {p: read_changelog(config, topic, p, timeout_s=30) for p in range(4)}
    assert together == alone
    assert together[0] == [(f"k{i % 4}", f"w{i}".encode()) for i in range(0, 30, 3)] + [
        ("k0", None)
    ]
    assert len(together[1]) == len(together[2]) == 10 and together[3] == []
    assert all(value != b"aborted" for _, value in together[1])
