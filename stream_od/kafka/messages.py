"""Typed reads of a consumed record: its coordinates, value and headers.

confluent-kafka's stubs make every part of a ``Message`` optional, because the same type also
carries error events and records not yet delivered.  A record a consumer returned without an
error always has its partition and offset: these helpers say so once, and raise if it is not
so.  Header values are typed ``str | bytes | None`` (a consumer hands out bytes, or None for a
header without a value); :func:`header_text` reads one as text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confluent_kafka import Message


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
