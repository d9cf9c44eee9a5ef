"""Typed reads of a consumed record: its coordinates, value and headers.

confluent-kafka's stubs make every part of a ``Message`` optional, because the same type also
carries error events and records not yet delivered.  A record a consumer returned without an
error always has its partition and offset: these helpers say so once, and raise if it is not
so.  Header values are typed ``str | bytes | None`` (a consumer hands out bytes, or None for a
header without a value); :func:`header_text` reads one as text.

The worker's loop reads every record of a batch several times over (keys, coordinates,
timestamps, the offsets a commit stores or a rewind goes back to): those reads, at the end,
call the accessors inline and skip the checks (no ``typing.cast`` either, a Python call too),
because they run once per record on its hot path and see only records consumed without an
error.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import cast

import numpy as np
from confluent_kafka import Message, TopicPartition


def record_offset(msg: Message) -> int:
    """The offset of a record a consumer returned without an error."""
    offset = msg.offset()
    if offset is None:
        raise ValueError(f"a message of {msg.topic()} without an offset (not a consumed record)")
    return offset


def record_partition(msg: Message) -> int:
    """The partition of a record a consumer returned without an error."""
    partition = msg.partition()
    if partition is None:
        raise ValueError(f"a message of {msg.topic()} without a partition (not a consumed record)")
    return partition


def record_value(msg: Message) -> bytes:
    """The value of a record that must have one (raises for a tombstone)."""
    value = msg.value()
    if value is None:
        raise ValueError(f"the record at {msg.topic()}@{msg.offset()} has no value")
    return value


def record_headers(msg: Message) -> dict[str, str | bytes | None]:
    """The record's headers by name (the last value of a repeated name)."""
    return dict(msg.headers() or {})


def header_text(value: str | bytes | None, default: str, *, errors: str = "strict") -> str:
    """A header value as text: ``default`` for a missing header or one without a value, bytes
    decoded as UTF-8 (``errors`` as for :meth:`bytes.decode`), text as it is."""
    if value is None:
        return default
    return value if isinstance(value, str) else value.decode(errors=errors)


# -- a batch, on the worker's hot path ----------------------------------------------------------
def coordinates(msg: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed record (the batch's hot path: no checks)."""
    return msg.topic(), msg.partition(), msg.offset()  # type: ignore[return-value]


def record_key(msg: Message) -> bytes | None:
    """A consumed record's key (bytes: the consumer has no deserializer)."""
    return msg.key()


def topic_partition(msg: Message) -> tuple[str, int]:
    return msg.topic(), msg.partition()  # type: ignore[return-value]


def key_size(msg: Message) -> int:
    """A record's key, which counts towards ``max_record_bytes``: alerts and scores carry it.
    Headers travel only with dead letters, which :func:`dead_letters.fit` cuts to size, so
    they need no check here (and reading them costs a Python list per record)."""
    key = msg.key()
    return len(key) if key else 0


def next_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    """One past the last offset of each partition in the batch (what a commit stores)."""
    last: dict[tuple[str, int], int] = {}
    for msg in messages:
        last[(msg.topic(), msg.partition())] = msg.offset()  # type: ignore[index,assignment]
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


def first_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    """The first offset of each partition in the batch (where a rewind goes back to)."""
    first: dict[tuple[str, int], int] = {}
    for msg in messages:
        topic, partition, offset = coordinates(msg)
        first.setdefault((topic, partition), offset)
    return [TopicPartition(t, p, o) for (t, p), o in first.items()]


def batch_stamps(messages: Sequence[Message]) -> tuple[np.ndarray, dict[tuple[str, int], float]]:
    """The records' Kafka timestamps (ms), and the last one of each partition (s): one pass
    over the batch for both, as they are wanted together once it has committed."""
    stamps = kafka_times(messages)
    last: dict[tuple[str, int], float] = {}
    for msg, stamp in zip(messages, stamps):
        last[(msg.topic(), msg.partition())] = stamp  # type: ignore[index]
    return np.array(stamps, dtype=np.float64), {tp: ms / 1000.0 for tp, ms in last.items()}


def kafka_times(messages: Sequence[Message]) -> list[int]:
    """The records' Kafka timestamps (ms; -1 where the record has none)."""
    return [msg.timestamp()[1] for msg in messages]


def newest_by_partition(
    messages: Sequence[Message], times: np.ndarray
) -> dict[tuple[str, int], int]:
    """Each partition's newest of ``times`` (``times[i]`` is ``messages[i]``'s), leaving out a
    partition whose records have no time (-1): grouped in numpy, as a batch is one topic's
    (of ``confluent_kafka.Message`` objects, or objects with their ``topic()`` and
    ``partition()``)."""
    n = len(messages)
    if not n:
        return {}
    topic_of, partition_of = (
        (Message.topic, Message.partition)  # mapped directly: a quarter of a methodcaller's cost
        if type(messages[0]) is Message
        else (operator.methodcaller("topic"), operator.methodcaller("partition"))
    )
    topics = set(map(topic_of, messages))
    if len(topics) > 1:
        newest: dict[tuple[str, int], int] = {}
        for stream, t in zip(map(topic_partition, messages), times.tolist()):
            if t > newest.get(stream, -1):
                newest[stream] = t
        return newest
    topic = cast(str, topics.pop())
    partitions = np.fromiter(map(partition_of, messages), dtype=np.int64, count=n)
    out: dict[tuple[str, int], int] = {}
    for p in np.unique(partitions).tolist():
        t = int(times[partitions == p].max())
        if t > -1:
            out[(topic, p)] = t
    return out
