"""Reading back the recent past of a partition, for state that is rebuilt before scoring.

A worker that takes over a partition (start, restart, rebalance) must rebuild the traffic
windows of that partition's keys before it scores its next record, or its first scores differ
from an uninterrupted run's.  The windows reach a bounded time back, so the records that matter
are the partition's last ones before the committed offset, back to the first one that is older
than the windows reach.  This module finds and reads them; what "older" means is the caller's
(``is_old``), so it knows nothing of windows, and the windows nothing of Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from stream_od.kafka.clients import STATE_POLL_S, STATE_READER
from stream_od.kafka.messages import record_offset

CHUNK = 5_000  # records read per step
# A tail longer than this (in bytes of its values) is read twice rather than held in memory.
KEEP_BYTES = 64 * 1024 * 1024


def read_range(
    consumer: Consumer, tp: TopicPartition, start: int, end: int, timeout_s: float
) -> list[tuple[int, bytes | None]]:
    """(offset, value) of the committed records of ``tp`` in ``[start, end)``, in order."""
    if start >= end:
        return []
    consumer.assign([TopicPartition(tp.topic, tp.partition, start)])
    out: list[tuple[int, bytes | None]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            for msg in consumer.consume(num_messages=1_000, timeout=STATE_POLL_S):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        return out
                    raise KafkaException(err)
                offset = record_offset(msg)
                if offset >= end:
                    return out
                out.append((offset, msg.value()))
            # Transaction markers take offsets too: past the last record before `end`, the
            # position reaches `end` without a record to show for it.
            position = consumer.position([TopicPartition(tp.topic, tp.partition)])[0].offset
            if position >= end:
                return out
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"reading {tp.topic}[{tp.partition}] offsets {start}-{end} "
                    f"took over {timeout_s:g} s"
                )
    finally:
        consumer.unassign()


def tail_chunks(
    config: dict[str, Any],
    tp: TopicPartition,
    end: int,
    old_test: Callable[[bytes | None], Callable[[bytes | None], bool] | None],
    *,
    timeout_s: float = 300.0,
    chunk: int = CHUNK,
    keep_bytes: int = KEEP_BYTES,
) -> Generator[list[bytes | None], None, None]:
    """The values of ``tp`` after the last record before ``end`` that is old (all of them back
    to the log start when none is), in offset order, a chunk of about ``chunk`` at a time.
    What "old" means depends on the newest record: ``old_test(newest value)`` gives the test,
    or ``None`` when that record cannot (it has no event time), and then the record before it
    is asked.  Reads backwards in chunks to find where the tail starts, keeping what it read
    while that stays under ``keep_bytes``; a longer tail (an hour of a busy partition can be
    gigabytes) is read again forwards, one chunk at a time, so that memory stays bounded
    whatever the partition's rate."""
    consumer = Consumer(
        {
            **config,
            **STATE_READER,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    try:
        low, _ = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=30)
        kept: list[list[bytes | None]] = []  # newest part first
        kept_bytes = 0
        keeping = True
        is_old: Callable[[bytes | None], bool] | None = None
        hi, start = end, low
        while hi > low:
            lo = max(low, hi - chunk)
            records = read_range(consumer, tp, lo, hi, timeout_s)
            if is_old is None:  # the test comes from the newest record with an event time
                for _, value in reversed(records):
                    is_old = old_test(value)
                    if is_old is not None:
                        break
            old = [i for i, (_, value) in enumerate(records) if is_old and is_old(value)]
            part = records[old[-1] + 1 :] if old else records
            if keeping:
                kept.append([v for _, v in part])
                kept_bytes += sum(len(v) for _, v in part if v)
                if kept_bytes > keep_bytes:  # too much to hold: read it again forwards
                    keeping, kept = False, []
            if old:
                start = records[old[-1]][0] + 1
                break
            hi = lo
        if keeping:
            values = [v for part in reversed(kept) for v in part]
            for at in range(0, len(values), chunk):
                yield values[at : at + chunk]
            return
        for lo in range(start, end, chunk):
            values = [v for _, v in read_range(consumer, tp, lo, min(end, lo + chunk), timeout_s)]
            if values:
                yield values
    finally:
        consumer.close()
