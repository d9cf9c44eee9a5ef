"""stream_od.kafka.messages: typed reads of a consumed record, and the reads over a batch the
worker makes per record (on real ``confluent_kafka.Message`` objects)."""

import numpy as np
import pytest
from confluent_kafka import Message
from hypothesis import given
from hypothesis import strategies as st

from stream_od.kafka.messages import (
    batch_stamps,
    coordinates,
    first_offsets,
    header_text,
    kafka_times,
    key_size,
    newest_by_partition,
    next_offsets,
    record_key,
    record_offset,
    record_partition,
    record_value,
    topic_partition,
)


def msg(partition, offset, *, key=None, value=b"{}", stamp=1_000, topic="in"):
    return Message(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        timestamp=(1, stamp),  # TIMESTAMP_CREATE_TIME
    )


BATCH = [msg(0, 5, stamp=100), msg(1, 9, stamp=250), msg(0, 6, stamp=300), msg(1, 10), msg(0, 7)]


def test_a_commit_stores_one_past_the_last_offset_of_each_partition():
    assert sorted((tp.partition, tp.offset) for tp in next_offsets(BATCH)) == [(0, 8), (1, 11)]


def test_a_rewind_goes_back_to_the_first_offset_of_each_partition():
    assert sorted((tp.partition, tp.offset) for tp in first_offsets(BATCH)) == [(0, 5), (1, 9)]


def test_batch_stamps_are_every_records_and_each_partitions_last_in_seconds():
    stamps, last = batch_stamps(BATCH)
    assert stamps.dtype == np.float64
    assert stamps.tolist() == [100.0, 250.0, 300.0, 1000.0, 1000.0]
    assert last == {("in", 0): 1.0, ("in", 1): 1.0}


def test_the_key_counts_towards_a_records_size_and_no_key_counts_nothing():
    assert key_size(msg(0, 1, key=b"host-17")) == 7
    assert key_size(msg(0, 1, key=None)) == 0
    assert key_size(msg(0, 1, key=b"")) == 0
    assert record_key(msg(0, 1, key=b"k")) == b"k"


def test_coordinates():
    record = msg(2, 41, topic="zeek.conn")
    assert coordinates(record) == ("zeek.conn", 2, 41)
    assert topic_partition(record) == ("zeek.conn", 2)
    assert (record_partition(record), record_offset(record)) == (2, 41)


def test_the_checked_reads_refuse_what_is_not_a_consumed_record():
    with pytest.raises(ValueError, match="without an offset"):
        record_offset(Message(topic="t", partition=0))
    with pytest.raises(ValueError, match="without a partition"):
        record_partition(Message(topic="t", offset=3))
    with pytest.raises(ValueError, match="has no value"):
        record_value(msg(0, 1, value=None))


def test_header_text():
    assert header_text(None, "default") == "default"
    assert header_text(b"abc", "d") == "abc"
    assert header_text("text", "d") == "text"
    assert header_text(b"\xff", "d", errors="replace") == "\ufffd"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["in", "in", "other"]),
            st.integers(0, 3),
            st.integers(-1, 10**13),
        ),
        max_size=40,
    )
)
def test_newest_by_partition_is_each_partitions_newest_time(rows):
    messages = [Message(topic=t, partition=p, offset=i) for i, (t, p, _) in enumerate(rows)]
    times = np.array([ms for *_, ms in rows], dtype=np.int64)
    expected: dict = {}
    for topic, partition, ms in rows:  # the suppression clock as the worker kept it before
        if ms > expected.get((topic, partition), -1):
            expected[(topic, partition)] = ms
    assert newest_by_partition(messages, times) == expected


def test_kafka_times_are_each_records_or_minus_one():
    assert kafka_times([msg(0, 0, stamp=5), msg(1, 1, stamp=7)]) == [5, 7]
