"""The dead-letter record: the original bytes and key, and headers that say why and from where.

Headers keep the input's own headers first (so a replayed record's label survives), then add
``stream_od.reason`` (a stable code, see ``stream_od.records.REASONS``), ``stream_od.detail``
(human text), and the origin: source topic, partition, offset and timestamp.

A dead letter must itself be writable, whatever the record was: one that would not fit the
producer's ``max_output_bytes`` carries what fits (a prefix of the value, the key and the
original headers only when they are small) plus the original sizes and sha256 digests, so the
record can still be found in the input topic at its source coordinates and checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from stream_od.alerts import Origin

REASON = "stream_od.reason"
DETAIL = "stream_od.detail"
SOURCE_TOPIC = "stream_od.source.topic"
SOURCE_PARTITION = "stream_od.source.partition"
SOURCE_OFFSET = "stream_od.source.offset"
SOURCE_TIMESTAMP = "stream_od.source.timestamp_ms"
ORIGINAL_SIZE = "stream_od.original.size"
ORIGINAL_SHA256 = "stream_od.original.sha256"
ORIGINAL_KEY_SIZE = "stream_od.original.key_size"
ORIGINAL_KEY_SHA256 = "stream_od.original.key_sha256"
ORIGINAL_HEADERS = "stream_od.original.headers"
TRUNCATED = "stream_od.truncated"

PREFIX_BYTES = 4096  # the most of an oversized value a dead letter keeps
SMALL_BYTES = 1024  # keys and header sets up to this size are kept with a truncated value


def headers(
    origin: Origin, reason: str, detail: str, original: list[tuple[str, bytes]] | None
) -> list[tuple[str, bytes]]:
    """The input's headers, then stream-od's (see :func:`fit` for one that must be cut)."""
    return [*(original or ()), *own_headers(origin, reason, detail)]


def own_headers(origin: Origin, reason: str, detail: str) -> list[tuple[str, bytes]]:
    return [
        (REASON, reason.encode()),
        (DETAIL, detail.encode("utf-8", "replace")),
        (SOURCE_TOPIC, origin.topic.encode()),
        (SOURCE_PARTITION, str(origin.partition).encode()),
        (SOURCE_OFFSET, str(origin.offset).encode()),
        (SOURCE_TIMESTAMP, str(origin.timestamp_ms).encode()),
    ]


def record_size(
    value: bytes | None,
    key: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None,
) -> int:
    """Bytes of a record as the producer counts them, near enough: value, key, headers."""
    return (
        len(value or b"") + len(key or b"") + sum(len(k) + len(v or b"") for k, v in headers or ())
    )


def fit(
    value: bytes | None,
    key: bytes | None,
    headers: list[tuple[str, bytes]],
    original: list[tuple[str, bytes]] | None,
    max_bytes: int,
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """The dead letter ``(value, key, headers)`` within ``max_bytes``; ``headers`` are
    stream-od's own (reason, detail, source), ``original`` the input's."""
    if record_size(value, key, [*(original or ()), *headers]) <= max_bytes:
        return value, key, [*(original or ()), *headers]
    cut: list[str] = []
    notes = [
        (ORIGINAL_SIZE, str(len(value or b"")).encode()),
        (ORIGINAL_SHA256, hashlib.sha256(value or b"").hexdigest().encode()),
    ]
    if key is not None and len(key) > SMALL_BYTES:
        notes += [
            (ORIGINAL_KEY_SIZE, str(len(key)).encode()),
            (ORIGINAL_KEY_SHA256, hashlib.sha256(key).hexdigest().encode()),
        ]
        key, cut = None, [*cut, "key"]
    kept = list(original or ())
    if record_size(None, None, kept) > SMALL_BYTES:
        notes.append(
            (
                ORIGINAL_HEADERS,
                f"{len(kept)} headers, {record_size(None, None, kept)} bytes".encode(),
            )
        )
        kept, cut = [], [*cut, "headers"]
    room = max_bytes - record_size(None, key, [*kept, *headers, *notes]) - 64
    if value is not None and len(value) > min(PREFIX_BYTES, room):
        value, cut = value[: max(0, min(PREFIX_BYTES, room))], [*cut, "value"]
    notes.append((TRUNCATED, ",".join(cut).encode()))
    return value, key, [*kept, *headers, *notes]
