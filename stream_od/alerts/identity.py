"""The connection an alert is about, its event time and its id, read from the record.

The schema's ``[identity]`` table names the fields (:mod:`stream_od.schema.identity`); this
module reads them, checks that an address is an address and a port a port (a SIEM's index
rejects a whole document whose ``source.ip`` is not an IP), and computes what the record does
not carry: the Community ID and a deterministic alert id.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import socket
import struct
import uuid
from typing import Any

from stream_od.alerts.facts import Connection, KafkaCoordinates
from stream_od.features import epoch_seconds
from stream_od.records import field_value
from stream_od.schema.identity import IdentitySpec

# IANA protocol numbers of the transports a flow sensor names (Zeek "tcp", EVE "TCP", NetFlow 6)
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58, "icmp6": 58, "sctp": 132}
NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp", 132: "sctp"}


class IdentityReader:
    """Reads a schema's identity fields and event time from decoded records."""

    def __init__(self, spec: IdentitySpec | None, time_field: str | None) -> None:
        self.spec = spec or IdentitySpec()
        self.time_field = time_field

    def connection(self, record: dict[str, Any]) -> Connection:
        s = self.spec
        src = _address(_get(record, s.source_ip))
        dst = _address(_get(record, s.destination_ip))
        sport = _port(_get(record, s.source_port))
        dport = _port(_get(record, s.destination_port))
        transport = _transport(_get(record, s.transport))
        session = _get(record, s.session_id)
        community = _get(record, s.community_id)
        if not (type(community) is str and community):
            community = community_id(transport, src, dst, sport, dport)
        return Connection(source_ip=src, source_port=sport, destination_ip=dst,
                          destination_port=dport, transport=transport,
                          session_id=None if session is None or isinstance(session, (dict, list))
                          else str(session),
                          community_id=community)

    def event_time_ms(self, record: dict[str, Any] | None, kafka_ms: int) -> tuple[int, str]:
        """The record's own time (the schema's ``time_field``), else Kafka's timestamp."""
        if self.time_field and record is not None:
            seconds = epoch_seconds(field_value(record, self.time_field))
            if seconds is not None and 0 <= seconds < 1e11:
                return int(round(seconds * 1000)), "record"
        return int(kafka_ms), "kafka"


def alert_id(model_version: str, connection: Connection, event_time_ms: int,
             kafka: KafkaCoordinates) -> str:
    """The same record and model version always give the same id (a UUID, usable as an
    Elasticsearch ``_id`` or a Splunk dedup key).  A record with a session id is named by it,
    its time and its endpoints (so a sensor's re-sent duplicate gets the same id, and so does
    the record after a re-keying stage); one without, by its Kafka coordinates (a replay of the
    topic and a reprocessing after a crash give the same ids)."""
    c = connection
    if c.session_id is not None:
        basis = (f"s\0{c.session_id}\0{event_time_ms}\0{c.source_ip}\0{c.source_port}\0"
                 f"{c.destination_ip}\0{c.destination_port}")
    else:
        basis = f"k\0{kafka.topic}\0{kafka.partition}\0{kafka.offset}"
    digest = hashlib.blake2b(f"{model_version}\0{basis}".encode("utf-8", "surrogatepass"),
                             digest_size=16).digest()
    return str(uuid.UUID(bytes=digest))


def summary_id(first_alert_id: str) -> str:
    digest = hashlib.blake2b(f"summary\0{first_alert_id}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest))


def community_id(transport: str | None, src: str | None, dst: str | None,
                 sport: int | None, dport: int | None, seed: int = 0) -> str | None:
    """Community ID v1 of a TCP, UDP or SCTP connection (None for anything else).

    Computed here rather than through the ``communityid`` package: that one costs about 70 µs
    a flow on this project's machines (it re-validates every argument), ten times this, and an
    alert burst is exactly when the worker can least afford it.  tests/alerts/test_identity.py
    checks this function against ``communityid`` on the spec's own examples and random flows.
    ICMP's type/code pairing is left to sensors that write the field themselves.
    """
    proto = PROTOCOLS.get(transport) if transport is not None else None
    if proto not in (6, 17, 132) or src is None or dst is None or sport is None or dport is None:
        return None
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    if (":" in dst) != (family == socket.AF_INET6):
        return None
    a, b = socket.inet_pton(family, src), socket.inet_pton(family, dst)
    if (a, sport) > (b, dport):
        a, b, sport, dport = b, a, dport, sport
    payload = struct.pack("!H", seed) + a + b + struct.pack("!BBHH", proto, 0, sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(payload).digest()).decode("ascii")


def _get(record: dict[str, Any], path: str | None) -> Any:
    return None if path is None else field_value(record, path)


def _address(value: Any) -> str | None:
    if type(value) is not str:
        return None
    try:
        return str(ipaddress.ip_address(value.strip().split("%", 1)[0]))
    except ValueError:
        return None


def _port(value: Any) -> int | None:
    if type(value) is str and value.isdigit():
        value = int(value)
    if type(value) is float and value.is_integer():
        value = int(value)
    return value if type(value) is int and 0 <= value <= 65535 else None


def _transport(value: Any) -> str | None:
    if type(value) is str and value:
        name = value.strip().lower()
        return NAMES.get(int(name), name) if name.isdigit() else name
    if type(value) is int and not isinstance(value, bool):
        return NAMES.get(value, str(value))
    return None
