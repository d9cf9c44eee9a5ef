"""What an alert says, before it is written in a SIEM's format.

The worker turns every record over the threshold into an :class:`Alert` (and a closed
suppression window into one with a :class:`Summary`); a format (``native``, ``ecs``, ``ocsf``)
turns an :class:`Alert` and the :class:`ModelInfo` it came from into the JSON document the
SIEM ingests.  Keeping the facts apart from the formats means every format says the same
thing, and a new format is one function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

PRODUCT = "stream-od"
VENDOR = "stream-od"


class Connection(NamedTuple):
    """The connection an alert is about, promoted from the record by the schema's
    ``[identity]`` table (any part may be unknown: KDD records carry no addresses).

    This and :class:`KafkaCoordinates` are named tuples, immutable as frozen dataclasses are,
    and built in a quarter of their time: a frozen dataclass sets each field through
    ``object.__setattr__``, and an alert storm builds two of these per alert."""

    source_ip: str | None = None
    source_port: int | None = None
    destination_ip: str | None = None
    destination_port: int | None = None
    transport: str | None = None  # lower-case IANA keyword: tcp, udp, icmp, ipv6-icmp, ...
    session_id: str | None = None  # the sensor's id of the connection: Zeek uid, EVE flow_id
    community_id: str | None = None  # "1:<base64>" (https://github.com/corelight/community-id-spec)


class KafkaCoordinates(NamedTuple):
    """Where the record was read (named as Elastic's Kafka input names them)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None

    def as_fields(self) -> dict[str, Any]:
        """The coordinates as a document's fields (no ``key`` when the record had none)."""
        out: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
        }
        if self.key is not None:
            out["key"] = self.key
        return out


@dataclass(frozen=True, slots=True)
class Summary:
    """A closed suppression window: the first alert of the window was emitted on its own,
    ``count`` more alerts of the same entity followed and were held back."""

    count: int
    first_ms: int  # event time of the window's first alert
    last_ms: int  # event time of its last alert
    max_score: float
    window_s: float
    entity: dict[str, Any]  # the suppression key: field -> value
    first_alert_id: str  # the emitted alert this summary follows up


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """The model behind an alert (one per artifact; the formats' rule/analytic)."""

    version: str
    detector: str
    schema: str
    threshold: float
    product_version: str


@dataclass(slots=True)
class Alert:
    """One alert's facts; ``summary`` is set on the summary alert of a suppression window."""

    id: str  # deterministic: same record, same model version -> same id
    event_time_ms: int  # the record's own time (the schema's time field), else Kafka's
    event_time_source: str  # "record" or "kafka"
    detected_at_ms: int
    score: float
    severity: str  # low | medium | high | critical
    risk_score: float  # 0-100, from the margin over the threshold
    top_features: list[dict[str, Any]]  # [{feature, contribution, value}], largest first
    record: dict[str, Any] | None  # the record's fields, label fields removed (None: summary)
    connection: Connection
    kafka: KafkaCoordinates
    summary: Summary | None = None
