"""The dead-letter record: the original bytes and key, and headers that say why and from where.

Headers keep the input's own headers first (so a replayed record's label survives), then add
``stream_od.reason`` (a stable code, see ``stream_od.records.REASONS``), ``stream_od.detail``
(human text), and the origin: source topic, partition, offset and timestamp.
"""

from __future__ import annotations

from stream_od.alerts import Origin

REASON = "stream_od.reason"
DETAIL = "stream_od.detail"
SOURCE_TOPIC = "stream_od.source.topic"
SOURCE_PARTITION = "stream_od.source.partition"
SOURCE_OFFSET = "stream_od.source.offset"
SOURCE_TIMESTAMP = "stream_od.source.timestamp_ms"


def headers(origin: Origin, reason: str, detail: str,
            original: list[tuple[str, bytes]] | None) -> list[tuple[str, bytes]]:
    return [*(original or ()),
            (REASON, reason.encode()),
            (DETAIL, detail.encode("utf-8", "replace")),
            (SOURCE_TOPIC, origin.topic.encode()),
            (SOURCE_PARTITION, str(origin.partition).encode()),
            (SOURCE_OFFSET, str(origin.offset).encode()),
            (SOURCE_TIMESTAMP, str(origin.timestamp_ms).encode())]
