"""The connection an alert is about, its event time and its id, read from the record.

The schema's ``[identity]`` table names the fields (:mod:`stream_od.schema.identity`); this
module reads them, checks that an address is an address and a port a port (a SIEM's index
rejects a whole document whose ``source.ip`` is not an IP), and computes what the record does
not carry: the Community ID and a deterministic alert id.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from stream_od.alerts.facts import Connection, KafkaCoordinates
from stream_od.alerts.jsonsafe import json_safe_text
from stream_od.features import MILLIS_FROM, epoch_seconds
from stream_od.records import field_value, path_values
from stream_od.schema.identity import IdentitySpec

# IANA protocol numbers of the transports a flow sensor names (Zeek "tcp", EVE "TCP", NetFlow 6)
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58, "icmp6": 58, "sctp": 132}
# IANA keywords, in lower case as ECS network.transport has them, of the protocol numbers flow
# sensors report beside TCP and UDP (tunnels, IPsec, routing); any other is its number as text
NAMES = {
    1: "icmp",
    2: "igmp",
    4: "ipv4",
    6: "tcp",
    17: "udp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "ipv6-icmp",
    89: "ospfigp",
    103: "pim",
    112: "vrrp",
    132: "sctp",
}
ICMP = frozenset({"icmp", "ipv6-icmp"})
# Zeek's transport_proto for a protocol it does not parse (ip_proto then says which)
UNKNOWN_TRANSPORT = "unknown_transport"


class IdentityReader:
    """Reads a schema's identity fields and event time from decoded records."""

    def __init__(self, spec: IdentitySpec | None, time_field: str | None) -> None:
        self.spec = spec or IdentitySpec()
        self.time_field = time_field

    def connection(self, record: dict[str, Any]) -> Connection:
        return self.connections([record])[0]

    def connections(self, records: Sequence[dict[str, Any]]) -> list[Connection]:
        """The connection of each record, read column by column (a batch's alerts at once)."""
        src, sport, dst, dport, transport, session, given = self._columns(records)
        return [
            Connection(  # positional: keywords cost a third more, once per alert
                a, ap, b, bp, t, sid, cid if cid is not None else community_id(t, a, b, ap, bp)
            )
            for a, ap, b, bp, t, sid, cid in zip(src, sport, dst, dport, transport, session, given)
        ]

    def parts(self, records: Sequence[dict[str, Any]], names: Sequence[str]) -> list[list[Any]]:
        """The columns of ``names`` (:class:`Connection`'s fields) as :meth:`connections` gives
        them, reading only what they need, without building a connection per record: what
        suppression keys a batch's alerts on before any alert is built."""
        wanted = set(names)
        if "community_id" in wanted:
            wanted.update(Connection._fields)
        columns = dict(zip(Connection._fields, self._columns(records, wanted)))
        if "community_id" in names:
            columns["community_id"] = [
                cid if cid is not None else community_id(t, a, b, ap, bp)
                for a, ap, b, bp, t, cid in zip(
                    columns["source_ip"],
                    columns["source_port"],
                    columns["destination_ip"],
                    columns["destination_port"],
                    columns["transport"],
                    columns["community_id"],
                )
            ]
        return [columns[name] for name in names]

    def _columns(
        self, records: Sequence[dict[str, Any]], wanted: set[str] | None = None
    ) -> tuple[list[Any], ...]:
        """Each of :class:`Connection`'s fields as a column, in its order (those not
        ``wanted`` left unread, None); the Community ID only where the record gives it."""
        s, n = self.spec, len(records)
        none = [None] * n

        def column(name: str, path: str | None, convert) -> list[Any]:
            if path is None or (wanted is not None and name not in wanted):
                return none
            return list(map(convert, path_values(records, path)))

        if wanted is not None and not wanted.isdisjoint(
            ("transport", "source_port", "destination_port")
        ):
            # ICMP's "ports" and ICMPv6 depend on the transport and the source address
            wanted = wanted | {"transport", "source_ip", "source_port", "destination_port"}
        src = column("source_ip", s.source_ip, _address)
        dst = column("destination_ip", s.destination_ip, _address)
        sport = column("source_port", s.source_port, _port)
        dport = column("destination_port", s.destination_port, _port)
        transport = column("transport", s.transport, _transport)
        if s.protocol_number is not None and (wanted is None or "transport" in wanted):
            # the IP protocol itself, when the record has it
            numbered = column("transport", s.protocol_number, _protocol_number)
            transport = [t if p is None else p for p, t in zip(numbered, transport)]
        given = column("community_id", s.community_id, _text)
        if not ICMP.isdisjoint(transport):
            transport, sport, dport = _icmp(transport, src, sport, dport)
            if wanted is None or "community_id" in wanted:
                given = self._icmp_community_ids(records, transport, src, dst, given)
        session = column("session_id", s.session_id, _session)
        return src, sport, dst, dport, transport, session, given

    def _icmp_community_ids(
        self,
        records: Sequence[dict[str, Any]],
        transport: list[str | None],
        src: list[str | None],
        dst: list[str | None],
        given: list[str | None],
    ) -> list[str | None]:
        """``given`` with the Community ID of each ICMP row that lacks one, from its message
        type and code (the schema's ``icmp_type`` and ``icmp_code``; none without them)."""
        s = self.spec
        if s.icmp_type is None or s.icmp_code is None:
            return given
        types = path_values(records, s.icmp_type)
        codes = path_values(records, s.icmp_code)
        return [
            community_id(t, a, b, _icmp_number(mt), _icmp_number(mc))
            if cid is None and t in ICMP
            else cid
            for t, a, b, mt, mc, cid in zip(transport, src, dst, types, codes, given)
        ]

    def event_time_ms(self, record: dict[str, Any] | None, kafka_ms: int) -> tuple[int, str]:
        """The record's own time (the schema's ``time_field``), else Kafka's timestamp."""
        if self.time_field and record is not None:
            return _event_time(field_value(record, self.time_field), kafka_ms)
        return int(kafka_ms), "kafka"

    def event_times_ms(
        self, records: Sequence[dict[str, Any]], kafka_ms: Sequence[int]
    ) -> list[tuple[int, str]]:
        """:meth:`event_time_ms` of each record, its time field read as one column."""
        if not self.time_field:
            return [(int(ms), "kafka") for ms in kafka_ms]
        return list(map(_event_time, path_values(records, self.time_field), kafka_ms))

    def event_ms(
        self,
        records: Sequence[dict[str, Any]],
        kafka_ms: Sequence[int] | Callable[[], Sequence[int]],
    ) -> np.ndarray:
        """The times of :meth:`event_times_ms` alone, as int64: what suppression reads for
        every record of a batch.  A column of float seconds (Zeek's JSON writer's ``ts``) is
        converted in one pass, rounded as :func:`_event_time` rounds (half to even).
        ``kafka_ms`` may be a function giving the Kafka times: it is called only when some
        record has no time of its own (reading them costs a call per record)."""

        def kafka() -> Sequence[int]:
            return kafka_ms() if callable(kafka_ms) else kafka_ms

        if not self.time_field or not len(records):
            return np.asarray(kafka(), dtype=np.int64)
        column = path_values(records, self.time_field)
        if set(map(type, column)) == {float}:
            seconds = np.asarray(column, dtype=np.float64)
            plausible = (seconds >= 0.0) & (seconds < MILLIS_FROM)  # NaN is not
            if plausible.all():
                return np.round(seconds * 1000.0).astype(np.int64)
            stamps = np.asarray(kafka(), dtype=np.int64)
            return np.where(plausible, np.round(seconds * 1000.0), stamps).astype(np.int64)
        return np.fromiter(
            (t for t, _ in map(_event_time, column, kafka())), dtype=np.int64, count=len(column)
        )


def _event_time(value: Any, kafka_ms: int) -> tuple[int, str]:
    seconds = epoch_seconds(value)
    if seconds is not None:  # a plausible time (epoch_seconds)
        return int(round(seconds * 1000)), "record"
    return int(kafka_ms), "kafka"


def alert_id(
    model_version: str, connection: Connection, event_time_ms: int, kafka: KafkaCoordinates
) -> str:
    """The same record and model version always give the same id (a UUID, usable as an
    Elasticsearch ``_id`` or a Splunk dedup key).  A record with a session id is named by it,
    its time and its endpoints (so a sensor's re-sent duplicate gets the same id, and so does
    the record after a re-keying stage); one without, by its Kafka coordinates (a replay of the
    topic and a reprocessing after a crash give the same ids)."""
    c = connection
    if c.session_id is not None:
        basis = (
            f"{model_version}\0s\0{c.session_id}\0{event_time_ms}\0{c.source_ip}\0"
            f"{c.source_port}\0{c.destination_ip}\0{c.destination_port}"
        )
    else:
        basis = f"{model_version}\0k\0{kafka.topic}\0{kafka.partition}\0{kafka.offset}"
    return _uuid_text(basis)


def summary_id(first_alert_id: str) -> str:
    return _uuid_text(f"summary\0{first_alert_id}")


def _uuid_text(basis: str) -> str:
    """A 128-bit hash of ``basis`` in UUID text form (what ``str(uuid.UUID(bytes=...))``
    gives, without its argument checks)."""
    h = hashlib.blake2b(basis.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def community_id(
    transport: str | None,
    src: str | None,
    dst: str | None,
    sport: int | None,
    dport: int | None,
    seed: int = 0,
) -> str | None:
    """Community ID v1 of a TCP, UDP, SCTP, ICMP or ICMPv6 connection (None for anything
    else, or where a part is missing).  For ICMP and ICMPv6, ``sport`` and ``dport`` are the
    message's type and code: a request or reply type (echo, timestamp, router or neighbour
    discovery, ...) stands for its pair, both directions hashed alike; any other message is
    one-way, its type and code hashed as they come (the spec's port equivalents, as Zeek maps
    ICMP into its conn.log).

    Computed here rather than through the ``communityid`` package: that one costs about 70 µs
    a flow on this project's machines (it re-validates every argument), ten times this, and an
    alert burst is exactly when the worker can least afford it.  tests/alerts/test_identity.py
    checks this function against ``communityid`` on the spec's own examples and random flows.
    """
    proto = PROTOCOLS.get(transport) if transport is not None else None
    if proto is None or src is None or dst is None or sport is None or dport is None:
        return None
    one_way = False
    if proto in (1, 58):
        if not (0 <= sport <= 255 and 0 <= dport <= 255):
            return None
        pair = (ICMP4_PAIRS if proto == 1 else ICMP6_PAIRS).get(sport)
        if pair is None:
            one_way = True
        else:
            dport = pair
    elif proto not in (6, 17, 132):
        return None
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    if (":" in dst) != (family == socket.AF_INET6):
        return None
    a, b = socket.inet_pton(family, src), socket.inet_pton(family, dst)
    if not one_way and (a, sport) > (b, dport):
        a, b, sport, dport = b, a, dport, sport
    payload = struct.pack("!H", seed) + a + b + struct.pack("!BBHH", proto, 0, sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(payload).digest()).decode("ascii")


def _pairs(*pairs: tuple[int, int]) -> dict[int, int]:
    """Each message type to its counterpart, both ways."""
    return {**dict(pairs), **{b: a for a, b in pairs}}


# ICMP message types that come in request/reply pairs (community-id-spec; Zeek's counterparts):
# echo, router solicitation/advertisement, timestamp, information, address mask
ICMP4_PAIRS = _pairs((8, 0), (10, 9), (13, 14), (15, 16), (17, 18))
# ICMPv6: echo, multicast listener query/report, router and neighbour discovery, node
# information, home agent address discovery
ICMP6_PAIRS = _pairs((128, 129), (130, 131), (133, 134), (135, 136), (139, 140), (144, 145))


# Text from a record goes out in the alert as it is, so it must be writable JSON: a lone
# surrogate (which Python's JSON parser lets through) becomes U+FFFD.


def _session(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return json_safe_text(value if type(value) is str else str(value))


def _text(value: Any) -> str | None:
    return json_safe_text(value) if type(value) is str and value else None


def _address(value: Any) -> str | None:
    """The address in canonical text (IPv6 compressed, zone dropped), None when it is none."""
    return _parse_address(value) if type(value) is str else None


@functools.lru_cache(maxsize=65_536)  # a site's addresses repeat: parse each once
def _parse_address(text: str) -> str | None:
    """inet_pton/inet_ntop: the C library's parser, a tenth of ``ipaddress``'s cost."""
    text = text.strip()
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    if family == socket.AF_INET6:
        text = text.split("%", 1)[0]
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, text))
    except (OSError, ValueError):
        return None


def _port(value: Any) -> int | None:
    if type(value) is str and value.isascii() and value.isdigit():  # not "²", which int refuses
        value = int(value)
    if type(value) is float and value.is_integer():
        value = int(value)
    return value if type(value) is int and 0 <= value <= 65535 else None


def _icmp_number(value: Any) -> int | None:
    """An ICMP type or code (0-255), None when it is none."""
    number = _port(value)
    return number if number is not None and number <= 255 else None


def _transport(value: Any) -> str | None:
    """A transport's IANA keyword in lower case; a number (Suricata writes one it has no name
    for zero-padded, ``"047"``) as its keyword, else as the number's text."""
    if type(value) is str and value:
        name = json_safe_text(value.strip().lower())
        if name.isascii() and name.isdigit():
            return NAMES.get(int(name), str(int(name)))
        return None if name == UNKNOWN_TRANSPORT else name
    if type(value) is int:
        return NAMES.get(value, str(value))
    return None


def _protocol_number(value: Any) -> str | None:
    """An IP protocol number (Zeek's ``ip_proto``) as its keyword; None when it is none."""
    if type(value) is str and value.isascii() and value.isdigit():
        value = int(value)
    if type(value) is float and value.is_integer():
        value = int(value)
    return NAMES.get(value, str(value)) if type(value) is int and 0 <= value <= 255 else None


def _icmp(
    transport: list[str | None],
    src: list[str | None],
    sport: list[int | None],
    dport: list[int | None],
) -> tuple[list[str | None], list[int | None], list[int | None]]:
    """ICMP rows made right: their "ports" are Zeek's ICMP type and code (they stay in the
    record, and give the row's Community ID), not ports, so an alert names none; and Zeek
    calls ICMPv6 ``icmp`` as well, which an IPv6 source says is ``ipv6-icmp``."""
    transport = [
        "ipv6-icmp" if t == "icmp" and a is not None and ":" in a else t
        for t, a in zip(transport, src)
    ]
    sport = [None if t in ICMP else p for t, p in zip(transport, sport)]
    dport = [None if t in ICMP else p for t, p in zip(transport, dport)]
    return transport, sport, dport
