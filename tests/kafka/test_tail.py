"""Reading a partition's tail back to rebuild its traffic windows, on the real broker."""

from __future__ import annotations

import time

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from stream_od.kafka import tail


def _ts(value: bytes | None) -> float | None:
    obj = orjson.loads(value) if value and value.startswith(b"{") else None
    return obj.get("ts") if isinstance(obj, dict) else None


def old_test(newest: bytes | None):
    """Records more than 5 s older than ``newest`` are old; ``None`` when it has no time."""
    ts = _ts(newest)
    if ts is None:
        return None
    return lambda v: (t := _ts(v)) is not None and t < ts - 5


def test_the_newest_record_with_an_event_time_sets_what_is_old(
    kafka_bootstrap, new_topic, monkeypatch
):
    """The partition ends in records without an event time (a dead letter, an EVE stats event
    the schema skips): the test comes from the newest record that has one, so the read stops
    there instead of reading the whole partition back."""
    topic = new_topic(partitions=1, prefix="tail")
    values = [orjson.dumps({"ts": 100.0 + i}) for i in range(20)]
    values += [b"not json", orjson.dumps({"event_type": "stats"})]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for v in values:
        producer.produce(topic, v)
    assert producer.flush(30) == 0
    ranges, offsets = [], []  # the [start, end) asked of read_range; the offsets it read
    read_range = tail.read_range

    def recording_read_range(consumer, tp, start, end, timeout_s):
        records = read_range(consumer, tp, start, end, timeout_s)
        ranges.append((start, end))
        offsets.extend(offset for offset, _ in records)
        return records

    monkeypatch.setattr(tail, "read_range", recording_read_range)
    chunks = tail.tail_chunks(
        {"bootstrap.servers": kafka_bootstrap, "group.id": "tail-test"},  # never joins
        TopicPartition(topic, 0),
        len(values),
        old_test,
        chunk=4,
    )
    got = [v for chunk in chunks for v in chunk]
    # newest timed record: ts 119, so 113 is the last old one and the tail starts at 114
    assert got == values[14:]
    # read back from the end, 4 at a time, and no further than the chunk that holds offset 13
    # (ts 113): offsets 0-9 are never read
    assert ranges[0][1] == len(values) and all(end - start <= 4 for start, end in ranges)
    assert min(start for start, _ in ranges) > 13 - 4, ranges
    assert 13 in offsets and min(offsets) > 13 - 4, offsets


def end_offset(config: dict, tp: TopicPartition, at_least: int) -> int:
    """The partition's high watermark, once it has ``at_least`` offsets: asked right after a
    topic is written, a new consumer can be answered (0, 0)."""
    deadline = time.monotonic() + 30
    while True:
        probe = Consumer(config)
        try:
            _, end = probe.get_watermark_offsets(tp, timeout=30)
        finally:
            probe.close()
        if end >= at_least:
            return end
        assert time.monotonic() < deadline, f"{tp.topic} never reached {at_least} offsets"
        time.sleep(0.1)


def test_a_tail_too_long_to_hold_is_read_again_forwards_in_chunks(kafka_bootstrap, new_topic):
    """Past ``keep_bytes`` the reader stops holding what it read backwards and reads the tail
    again forwards, a chunk at a time: the same values in the same order, in transactions
    (whose markers take offsets) as well as without."""
    config = {"bootstrap.servers": kafka_bootstrap, "group.id": "tail-test"}  # never joins
    for transactional in (False, True):
        topic = new_topic(partitions=1, prefix="tail")
        values = [orjson.dumps({"ts": 100.0 + i / 16}) for i in range(300)]
        producer = Producer(
            {"bootstrap.servers": kafka_bootstrap}
            | ({"transactional.id": f"tail-{topic}"} if transactional else {})
        )
        if transactional:
            producer.init_transactions(30)
        for at in range(0, len(values), 7):
            if transactional:
                producer.begin_transaction()
            for v in values[at : at + 7]:
                producer.produce(topic, v)
            if transactional:
                producer.commit_transaction(30)
        assert producer.flush(30) == 0
        tp = TopicPartition(topic, 0)
        markers = -(-len(values) // 7) if transactional else 0  # one a transaction
        end = end_offset(config, tp, at_least=len(values) + markers)
        held = list(tail.tail_chunks(config, tp, end, old_test, chunk=16))
        again = list(tail.tail_chunks(config, tp, end, old_test, chunk=16, keep_bytes=100))
        # the newest is at 118.6875, so before 113.6875 is old: the tail is records 219-299
        assert [v for c in held for v in c] == values[219:]
        assert [v for c in again for v in c] == values[219:]
        assert all(len(c) <= 16 for c in held + again) and len(again) > 1
