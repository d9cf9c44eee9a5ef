"""Sample alerts for the format tests: one per kind of record a schema gives us.

Plain builder functions (the docs test and ``python -m tests.alerts.test_siem_docs`` use them
outside pytest too) and fixtures over them.  Addresses are from the documentation ranges
(RFC 5737, RFC 3849); Community IDs are computed with ``communityid``, the spec's reference
implementation, so they are real values for these flows.
"""

from __future__ import annotations

import communityid
import pytest

from stream_od.alerts.facts import Alert, Connection, KafkaCoordinates, ModelInfo, Summary

EVENT_MS = 1796220000123  # 2026-12-02T14:00:00.123Z
_CID = communityid.CommunityID()


def model_info() -> ModelInfo:
    return ModelInfo(
        version="vaegmm-20261201T120000Z-1a2b3c4d",
        detector="vaegmm",
        schema="zeek-conn",
        threshold=3.12,
        product_version="0.1.0",
    )


def zeek_alert() -> Alert:
    """A Zeek conn record: full connection identity, Zeek's uid, a Community ID."""
    src, sport, dst, dport = "192.0.2.10", 52311, "198.51.100.20", 22
    cid = _CID.calc(communityid.FlowTuple.make_tcp(src, dst, sport, dport))
    record = {
        "ts": EVENT_MS / 1000,
        "uid": "CHhAvVGS1DHFjwGM9",
        "id.orig_h": src,
        "id.orig_p": sport,
        "id.resp_h": dst,
        "id.resp_p": dport,
        "proto": "tcp",
        "service": "ssh",
        "duration": 0.412,
        "orig_bytes": 48213,
        "resp_bytes": 1840,
        "conn_state": "SF",
        "history": "ShADadFf",
        "orig_pkts": 61,
        "resp_pkts": 33,
        "community_id": cid,
    }
    return Alert(
        id="6f1c2b7e-3d4a-4f0b-9a51-2c8e7d9b0a13",
        event_time_ms=EVENT_MS,
        event_time_source="record",
        detected_at_ms=EVENT_MS + 1877,
        score=7.94,
        severity="high",
        risk_score=61.3,
        top_features=[
            {"feature": "orig_bytes", "contribution": 5.82, "value": 3.71},
            {"feature": "history", "contribution": 1.4, "value": 1.0},
            {"feature": "duration", "contribution": 0.51, "value": -0.62},
        ],
        record=record,
        connection=Connection(
            source_ip=src,
            source_port=sport,
            destination_ip=dst,
            destination_port=dport,
            transport="tcp",
            session_id="CHhAvVGS1DHFjwGM9",
            community_id=cid,
        ),
        kafka=KafkaCoordinates(
            topic="zeek.conn", partition=3, offset=1048576, timestamp_ms=EVENT_MS + 412, key=None
        ),
    )


def suricata_alert() -> Alert:
    """A Suricata EVE flow over IPv6 (UDP), with a Kafka key."""
    src, sport, dst, dport = "2001:db8::10", 5353, "2001:db8:0:1::53", 53
    cid = _CID.calc(communityid.FlowTuple.make_udp(src, dst, sport, dport))
    record = {
        "timestamp": "2026-12-02T14:00:00.123456+0000",
        "flow_id": 1587409573218765,
        "event_type": "flow",
        "src_ip": src,
        "src_port": sport,
        "dest_ip": dst,
        "dest_port": dport,
        "proto": "UDP",
        "app_proto": "dns",
        "flow": {
            "pkts_toserver": 412,
            "pkts_toclient": 3,
            "bytes_toserver": 61800,
            "bytes_toclient": 402,
            "state": "established",
            "reason": "timeout",
        },
        "community_id": cid,
    }
    return Alert(
        id="0b9e4c1d-8a27-4e55-b3f6-71d2a9c4e8f0",
        event_time_ms=EVENT_MS,
        event_time_source="record",
        detected_at_ms=EVENT_MS + 903,
        score=41.5,
        severity="critical",
        risk_score=93.8,
        top_features=[{"feature": "flow.bytes_toserver", "contribution": 30.2, "value": 9.9}],
        record=record,
        connection=Connection(
            source_ip=src,
            source_port=sport,
            destination_ip=dst,
            destination_port=dport,
            transport="udp",
            session_id="1587409573218765",
            community_id=cid,
        ),
        kafka=KafkaCoordinates(
            topic="suricata.eve",
            partition=0,
            offset=77,
            timestamp_ms=EVENT_MS + 95,
            key="2001:db8::10",
        ),
    )


def kdd_alert() -> Alert:
    """A KDD'99 record: no addresses nor ports, only the protocol; time from Kafka."""
    record = {
        "duration": 0,
        "protocol_type": "tcp",
        "service": "private",
        "flag": "REJ",
        "src_bytes": 0,
        "dst_bytes": 0,
        "count": 229,
        "srv_count": 10,
        "rerror_rate": 1.0,
        "same_srv_rate": 0.04,
    }
    return Alert(
        id="9d3f6a20-51c8-4b7e-8e0a-4f2b6c1d7e93",
        event_time_ms=EVENT_MS + 5000,
        event_time_source="kafka",
        detected_at_ms=EVENT_MS + 5210,
        score=3.5,
        severity="low",
        risk_score=9.4,
        top_features=[{"feature": "rerror_rate", "contribution": 2.2, "value": 2.4}],
        record=record,
        connection=Connection(transport="tcp"),
        kafka=KafkaCoordinates(
            topic="kdd", partition=1, offset=5, timestamp_ms=EVENT_MS + 5000, key=None
        ),
    )


def summary_alert() -> Alert:
    """The summary of a suppression window keyed by source address (no record)."""
    first = zeek_alert()
    return Alert(
        id="e2a7c9d4-6b13-4f8a-a0c5-3d9e1b7f2468",
        event_time_ms=EVENT_MS + 299_000,
        event_time_source="record",
        detected_at_ms=EVENT_MS + 300_600,
        score=12.4,
        severity="medium",
        risk_score=40.0,
        top_features=[],
        record=None,
        connection=Connection(source_ip="192.0.2.10"),
        kafka=KafkaCoordinates(
            topic="zeek.conn",
            partition=3,
            offset=1049901,
            timestamp_ms=EVENT_MS + 299_310,
            key=None,
        ),
        summary=Summary(
            count=41,
            first_ms=EVENT_MS,
            last_ms=EVENT_MS + 299_000,
            max_score=12.4,
            window_s=300.0,
            entity={"detector": "vaegmm", "source_ip": "192.0.2.10"},
            first_alert_id=first.id,
        ),
    )


SAMPLES = {
    "zeek": zeek_alert,
    "suricata": suricata_alert,
    "kdd": kdd_alert,
    "summary": summary_alert,
}


@pytest.fixture(params=sorted(SAMPLES))
def sample_alert(request) -> Alert:
    return SAMPLES[request.param]()


@pytest.fixture
def model() -> ModelInfo:
    return model_info()
