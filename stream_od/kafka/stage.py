"""A windows stage's output: the Kafka records it writes for the scoring stage.

A worker with ``windows_stage_topic`` set computes its schema's traffic windows and does not
score: it writes each scoreable record on, its window values added under
``_stream_od.windows.<role>`` so that the scoring stage reads them instead of computing them
(docs/windows.md).  What travels with a record is decided here: its key (the field that keeps a
host's records on one partition of the stage topic), its input timestamp (moved inside what the
stage topic accepts, where the topic limits them), and its headers (labels, trace ids), unless
they are so large they could stop the write.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import orjson
from confluent_kafka import Message

from stream_od.alerts.jsonsafe import json_safe
from stream_od.features import category_key
from stream_od.kafka import dead_letters
from stream_od.records import DecodedBatch, RecordDecoder, field_value, with_window_values

if TYPE_CHECKING:
    from stream_od.kafka.topic_settings import StampWindow

#: headers past this size together are not passed on; a header says how many were dropped
PASSED_HEADER_BYTES = 16 * 1024
HEADERS_DROPPED = "stream-od-headers-dropped"

#: one output record: value, key, timestamp (ms), headers
StageRecord = tuple[bytes, bytes | None, int, list[tuple[str, bytes | None]] | None]


def stage_records(
    messages: Sequence[Message],
    batch: DecodedBatch,
    decoder: RecordDecoder,
    roles: Iterable[str],
    key_field: str,
    window: StampWindow | None,
) -> list[StageRecord]:
    """Each scoreable record of ``batch`` (decoded from ``messages``) with the window values of
    ``roles`` added, keyed by its ``key_field``, stamped with its input timestamp (clamped into
    ``window`` when the stage topic limits them) and carrying its headers on."""
    columns = {role: decoder.window_columns(role) for role in roles}
    now_ms = int(time.time() * 1000)
    out: list[StageRecord] = []
    for j, (row, record) in enumerate(zip(batch.rows.tolist(), batch.fields_of(slice(None)))):
        values = {role: batch.X[j, cols].tolist() for role, cols in columns.items()}
        doc = with_window_values(record, values)
        try:
            value = orjson.dumps(doc)
        except orjson.JSONEncodeError:  # valid JSON beyond orjson (a 400-digit integer)
            value = orjson.dumps(json_safe(doc))
        key = category_key(field_value(record, key_field))
        msg = messages[row]
        stamp = msg.timestamp()[1]
        out.append(
            (
                value,
                None if key is None else key.encode("utf-8", "replace"),
                stamp if window is None else window.clamp(stamp, now_ms),
                passed_headers(msg.headers()),
            )
        )
    return out


def passed_headers(
    headers: list[tuple[str, bytes | None]] | None,
) -> list[tuple[str, bytes | None]] | None:
    """The headers a windows stage passes on with a record (labels, trace ids): all of them, or,
    past 16 KiB together, none but a count of those dropped, so that no header can make the
    stage's output too large to write."""
    if not headers:
        return None
    size = dead_letters.record_size(None, None, headers)
    if size <= PASSED_HEADER_BYTES:
        return headers
    return [(HEADERS_DROPPED, f"{len(headers)} headers, {size} bytes".encode())]
