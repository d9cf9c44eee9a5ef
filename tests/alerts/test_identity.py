"""Connection identity: Community ID against the maintained ``communityid`` package, and the
checks that keep a SIEM's index from rejecting an alert (pure logic)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import communityid
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_od.alerts.identity import IdentityReader, community_id
from stream_od.schema import load_schema

REFERENCE = communityid.CommunityID()
MAKE = {
    "tcp": communityid.FlowTuple.make_tcp,
    "udp": communityid.FlowTuple.make_udp,
    "sctp": communityid.FlowTuple.make_sctp,
}


def reference(transport, src, dst, sport, dport) -> str:
    return REFERENCE.calc(MAKE[transport](src, dst, sport, dport))


def test_the_specs_own_example():
    # community-id-spec's README: TCP 128.232.110.120:34855 -> 66.35.250.204:80
    assert (
        community_id("tcp", "128.232.110.120", "66.35.250.204", 34855, 80)
        == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    )


def test_agrees_with_communityid_on_random_flows_both_ways():
    rng = random.Random(7)
    for _ in range(2_000):
        transport = rng.choice(["tcp", "udp", "sctp"])
        if rng.random() < 0.3:
            src = ":".join(f"{rng.randrange(65536):x}" for _ in range(8))
            dst = ":".join(f"{rng.randrange(65536):x}" for _ in range(8))
        else:
            src = ".".join(str(rng.randrange(256)) for _ in range(4))
            dst = (
                src if rng.random() < 0.05 else ".".join(str(rng.randrange(256)) for _ in range(4))
            )
        sport, dport = rng.randrange(65536), rng.randrange(65536)
        want = reference(transport, src, dst, sport, dport)
        assert community_id(transport, src, dst, sport, dport) == want
        assert community_id(transport, dst, src, dport, sport) == want  # direction-free


def test_agrees_with_communityid_on_icmp_and_icmpv6_both_ways():
    """ICMP's type and code stand in for the ports: a request or reply type hashes as its pair
    (the echo request and its reply are one flow), any other message one-way."""
    rng = random.Random(11)
    icmp4 = [0, 3, 5, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18]
    icmp6 = [1, 2, 3, 4, 128, 129, 130, 131, 133, 134, 135, 136, 137, 139, 140, 143, 144, 145]
    for _ in range(3_000):
        if rng.random() < 0.4:
            src = ":".join(f"{rng.randrange(65536):x}" for _ in range(8))
            dst = ":".join(f"{rng.randrange(65536):x}" for _ in range(8))
            transport, make, types = "ipv6-icmp", communityid.FlowTuple.make_icmp6, icmp6
        else:
            src = ".".join(str(rng.randrange(256)) for _ in range(4))
            dst = ".".join(str(rng.randrange(256)) for _ in range(4))
            transport, make, types = "icmp", communityid.FlowTuple.make_icmp, icmp4
        dst = src if rng.random() < 0.05 else dst
        kind = rng.choice(types) if rng.random() < 0.8 else rng.randrange(256)
        code = rng.randrange(256) if rng.random() < 0.5 else 0
        want = REFERENCE.calc(make(src, dst, kind, code))
        assert community_id(transport, src, dst, kind, code) == want
    # an echo request and its reply, each seen from its sender, are one flow
    request = community_id("icmp", "10.0.0.1", "10.0.0.2", 8, 0)
    assert request == community_id("icmp", "10.0.0.2", "10.0.0.1", 0, 0) is not None


@pytest.mark.parametrize(
    "args",
    [
        ("icmp", "1.2.3.4", "5.6.7.8", None, 0),  # no type
        ("icmp", "1.2.3.4", "5.6.7.8", 300, 0),  # not a type
        ("gre", "1.2.3.4", "5.6.7.8", 1, 2),  # the spec leaves ports out; we leave it to sensors
        ("tcp", "1.2.3.4", "::1", 1, 2),
        ("tcp", None, "5.6.7.8", 1, 2),
        ("tcp", "1.2.3.4", "5.6.7.8", None, 2),
    ],
)
def test_no_community_id_where_the_spec_needs_more(args):
    assert community_id(*args) is None


def test_bad_addresses_and_ports_are_left_out_not_passed_on():
    reader = IdentityReader(load_schema("zeek-conn").identity, "ts")
    c = reader.connection(
        {
            "id.orig_h": "not-an-ip",
            "id.orig_p": "80x",
            "id.resp_h": "fe80::1%eth0",
            "id.resp_p": 70_000,
            "proto": "TCP",
            "uid": {"a": 1},
        }
    )
    assert c.source_ip is None and c.source_port is None and c.destination_port is None
    assert c.destination_ip == "fe80::1" and c.transport == "tcp" and c.session_id is None


def test_suricata_records_and_their_own_community_id():
    reader = IdentityReader(load_schema("suricata-flow").identity, "flow.start")
    c = reader.connection(
        {
            "src_ip": "2001:db8::1",
            "src_port": 443,
            "dest_ip": "2001:db8::2",
            "dest_port": 51000,
            "proto": "TCP",
            "flow_id": 1234567890123,
            "community_id": "1:sensor-written",
        }
    )
    assert c.community_id == "1:sensor-written" and c.session_id == "1234567890123"
    want = int(datetime(2026, 12, 2, 10, 0, 0, 500_000, tzinfo=UTC).timestamp() * 1000)
    assert reader.event_time_ms({"flow": {"start": "2026-12-02T10:00:00.500000+0000"}}, 1) == (
        want,
        "record",
    )
    assert reader.event_time_ms({"flow": {}}, 42) == (42, "kafka")


def test_event_times_of_a_batch_are_each_records_own():
    """The column read gives what one record at a time gives: its time where it has a plausible
    one, Kafka's otherwise, and Kafka's for every record of a schema without a time field."""
    reader = IdentityReader(load_schema("zeek-conn").identity, "ts")
    records = [
        {"ts": 1655158045.422366},
        {"ts": "2022-06-13T22:07:25.5Z"},
        {},
        {"ts": "yesterday"},
        {"ts": 10**20},
        {"id_orig_h": "10.0.0.1", "ts": 1655158046},
    ]
    kafka = [11, 12, 13, 14, 15, 16]
    one_by_one = [reader.event_time_ms(r, k) for r, k in zip(records, kafka)]
    assert reader.event_times_ms(records, kafka) == one_by_one
    assert [source for _, source in one_by_one] == [
        "record",
        "record",
        "kafka",
        "kafka",
        "kafka",
        "record",
    ]
    untimed = IdentityReader(None, None)
    assert untimed.event_times_ms(records[:2], [5, 6]) == [(5, "kafka"), (6, "kafka")]


def test_protocol_numbers_become_names():
    reader = IdentityReader(load_schema("zeek-conn").identity, None)
    assert reader.connection({"proto": 17}).transport == "udp"
    assert reader.connection({"proto": "6"}).transport == "tcp"
    assert reader.connection({"proto": 47}).transport == "gre"
    assert reader.connection({"proto": 253}).transport == "253"  # no keyword: the number


def test_suricata_writes_a_protocol_it_has_no_name_for_zero_padded():
    reader = IdentityReader(load_schema("suricata-flow").identity, None)
    assert reader.connection({"proto": "047"}).transport == "gre"
    assert reader.connection({"proto": "253"}).transport == "253"
    assert reader.connection({"proto": "0253"}).transport == "253"


ZEEK_ICMP = {"id.orig_h": "192.168.4.76", "id.orig_p": 8, "id.resp_h": "192.168.4.1"}


@pytest.mark.parametrize(
    "record, transport",
    [
        ({**ZEEK_ICMP, "id.resp_p": 0, "proto": "icmp"}, "icmp"),  # echo request: type 8, code 0
        (  # ICMPv6 neighbour solicitation: Zeek's proto says icmp
            {"id.orig_h": "fe80::1", "id.orig_p": 135, "id.resp_h": "ff02::1:ff00:2"}
            | {"id.resp_p": 136, "proto": "icmp"},
            "ipv6-icmp",
        ),
        (  # the same with ip_proto, as a recent Zeek writes it
            {"id.orig_h": "fe80::1", "id.orig_p": 135, "id.resp_h": "ff02::1:ff00:2"}
            | {"id.resp_p": 136, "proto": "icmp", "ip_proto": 58},
            "ipv6-icmp",
        ),
    ],
)
def test_a_zeek_icmp_record_names_no_ports(record, transport):
    """Zeek's conn.log puts an ICMP message's type and code where the ports go: they are not
    ports, and an alert must not say source.port 8 (they stay in the record)."""
    c = IdentityReader(load_schema("zeek-conn").identity, None).connection(record)
    assert c.transport == transport and c.source_ip is not None
    assert c.source_port is None and c.destination_port is None
    # its Community ID from the type and code, as the spec (and Zeek's own package) has it
    make = (
        communityid.FlowTuple.make_icmp if transport == "icmp" else communityid.FlowTuple.make_icmp6
    )
    want = make(record["id.orig_h"], record["id.resp_h"], record["id.orig_p"], record["id.resp_p"])
    assert c.community_id == REFERENCE.calc(want)


def test_an_eve_icmp_flow_has_its_community_id_from_its_type_and_code():
    reader = IdentityReader(load_schema("suricata-flow").identity, None)
    flow = {"src_ip": "10.0.0.1", "dest_ip": "10.0.0.9", "proto": "ICMP", "flow_id": 7}
    c = reader.connection({**flow, "icmp_type": 3, "icmp_code": 1})  # host unreachable
    want = communityid.FlowTuple.make_icmp("10.0.0.1", "10.0.0.9", 3, 1)
    assert c.community_id == REFERENCE.calc(want) and c.source_port is None
    assert reader.connection(flow).community_id is None  # no type: none rather than a guess
    given = reader.connection({**flow, "icmp_type": 8, "icmp_code": 0, "community_id": "1:x"})
    assert given.community_id == "1:x"  # the sensor's own wins


def test_zeek_ip_proto_names_what_proto_cannot():
    """An ESP flow: Zeek's transport_proto is unknown_transport, ip_proto says 50; ports 0."""
    reader = IdentityReader(load_schema("zeek-conn").identity, None)
    esp = {"id.orig_h": "10.0.0.1", "id.orig_p": 0, "id.resp_h": "10.0.0.2", "id.resp_p": 0}
    assert (
        reader.connection({**esp, "proto": "unknown_transport", "ip_proto": 50}).transport == "esp"
    )
    assert reader.connection({**esp, "proto": "unknown_transport"}).transport is None
    tcp = {**esp, "id.orig_p": 5000, "id.resp_p": 80, "proto": "tcp", "ip_proto": 6}
    c = reader.connection(tcp)
    assert (c.transport, c.source_port, c.destination_port) == ("tcp", 5000, 80)
    assert c.community_id == reference("tcp", "10.0.0.1", "10.0.0.2", 5000, 80)
    assert reader.connection({**tcp, "ip_proto": "junk"}).transport == "tcp"


@pytest.mark.parametrize("schema", ["zeek-conn", "suricata-flow"])
def test_parts_read_alone_are_the_connections_parts(schema):
    """Suppression keys on a few parts before any alert is built (``parts``): each part, and
    any pair, read alone is what the whole connection says, ICMP and IPv6 rows included."""
    from itertools import combinations

    from stream_od.alerts.facts import Connection

    reader = IdentityReader(load_schema(schema).identity, None)
    zeek_rows = [
        {**ZEEK_ICMP, "id.resp_p": 0, "proto": "icmp"},
        {"id.orig_h": "fe80::1", "id.orig_p": 135, "id.resp_h": "ff02::1:ff00:2"}
        | {"id.resp_p": 136, "proto": "icmp", "ip_proto": 58},
        {"id.orig_h": "10.0.0.1", "id.orig_p": 0, "id.resp_h": "10.0.0.2", "id.resp_p": 0}
        | {"proto": "unknown_transport", "ip_proto": 50},
        {"id.orig_h": "10.0.0.1", "id.orig_p": 5, "id.resp_h": "10.0.0.2", "id.resp_p": 80}
        | {"proto": "tcp", "uid": "C1", "community_id": "1:given"},
    ]
    eve_rows = [
        {"src_ip": "10.0.0.1", "src_port": 5, "dest_ip": "10.0.0.2", "dest_port": 80}
        | {"proto": "TCP", "flow_id": 7},
        {"src_ip": "2001:db8::1", "dest_ip": "2001:db8::2", "proto": "IPv6-ICMP"}
        | {"icmp_type": 135, "icmp_code": 0},
        {"src_ip": "2001:db8::1", "dest_ip": "2001:db8::2", "proto": "IPv6-ICMP"}
        | {"icmp_type": 135},
        {"src_ip": "10.0.0.1", "dest_ip": "10.0.0.9", "proto": "047"},
    ]
    records = zeek_rows + eve_rows
    whole = reader.connections(records)
    names = list(Connection._fields)
    for chosen in [[n] for n in names] + [list(p) for p in combinations(names, 2)]:
        got = reader.parts(records, chosen)
        assert got == [[getattr(c, n) for c in whole] for n in chosen], chosen


@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(min_value=1e9, max_value=2e9),
            st.integers(min_value=-(2**70), max_value=2**70),
            st.sampled_from(["2026-12-07T10:00:00.5Z", "junk", "", None, True]),
        ),
        max_size=30,
    ),
    st.booleans(),
)
def test_event_ms_is_each_records_event_time(values, floats_only):
    """The column of times suppression reads (one numpy pass when ``ts`` is float seconds, as
    Zeek writes it) is the time each alert takes, whatever the records hold."""
    if floats_only:
        values = [v for v in values if type(v) is float]
    reader = IdentityReader(None, "ts")
    records = [{} if v is None else {"ts": v} for v in values]
    kafka = list(range(1_796_220_000_000, 1_796_220_000_000 + len(values)))
    expected = [t for t, _ in reader.event_times_ms(records, kafka)]
    assert reader.event_ms(records, kafka).tolist() == expected
    asked = []  # the Kafka times given lazily are read only when some record lacks its own
    assert reader.event_ms(records, lambda: asked.append(1) or kafka).tolist() == expected
    has_own = all(type(v) is float and 0 <= v < 1e11 for v in values)
    assert asked == ([] if has_own and values else [1])
