"""Decoding and validation of a micro-batch (pure logic, no Kafka)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest

from stream_od import records
from stream_od.records import RecordDecoder
from stream_od.schema import DEFAULT_FEATURES, KDD_COLUMNS

# One real KDD line (smurf) and its JSON form.
CSV_LINE = (
    b"0,icmp,ecr_i,SF,1032,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,511,511,0.00,0.00,0.00,0.00,"
    b"1.00,0.00,0.00,255,255,1.00,0.00,1.00,0.00,0.00,0.00,0.00,0.00,smurf."
)


def json_record(**override) -> dict:
    parts = CSV_LINE.decode().split(",")
    rec = {
        n: (v if n in ("protocol_type", "service", "flag") else float(v))
        for n, v in zip(KDD_COLUMNS, parts)
    }
    rec.update(override)
    return rec


def expected_row() -> np.ndarray:
    parts = CSV_LINE.decode().split(",")
    return np.array([float(parts[KDD_COLUMNS.index(n)]) for n in DEFAULT_FEATURES])


def test_clean_json_and_csv_batches_decode_to_the_same_matrix():
    d = RecordDecoder(DEFAULT_FEATURES)
    js = d.decode([orjson.dumps(json_record(extra_field="carried"))] * 3)
    cs = d.decode([CSV_LINE] * 3)
    assert js.rejected == [] and cs.rejected == []
    np.testing.assert_array_equal(js.X, np.tile(expected_row(), (3, 1)))
    np.testing.assert_array_equal(cs.X, js.X)
    assert js.fields(0)["extra_field"] == "carried"
    assert cs.fields(2)["label"] == "smurf." and cs.fields(2)["service"] == "ecr_i"


def test_integer_json_values_are_numbers():
    rec = json_record(srv_count=511)  # an int, not a float
    out = RecordDecoder(DEFAULT_FEATURES).decode([orjson.dumps(rec)])
    assert out.X[0, 0] == 511.0


@pytest.mark.parametrize(
    "value, reason",
    [
        (b"", records.EMPTY),
        (None, records.EMPTY),
        (b"{not json", records.INVALID_JSON),
        (b"[1, 2, 3]", records.INVALID_JSON),
        (
            orjson.dumps({k: v for k, v in json_record().items() if k != "serror_rate"}),
            records.MISSING_FEATURE,
        ),
        (orjson.dumps(json_record(srv_count="511")), records.NON_NUMERIC),
        (orjson.dumps(json_record(srv_count=None)), records.MISSING_FEATURE),
        (orjson.dumps(json_record(srv_count=True)), records.NON_NUMERIC),
        (json.dumps(json_record(srv_count=float("nan"))).encode(), records.NON_FINITE),
        (json.dumps(json_record(srv_count=float("inf"))).encode(), records.NON_FINITE),
        (
            orjson.dumps(json_record()).replace(b'"srv_count":511.0', b'"srv_count":1e999'),
            records.NON_FINITE,
        ),
        (b"0,tcp,http,SF,1", records.INVALID_CSV),
        (CSV_LINE.replace(b",511,511,", b",511,abc,"), records.NON_NUMERIC),
        (CSV_LINE.replace(b",511,511,", b",511,nan,"), records.NON_FINITE),
        (b"{" + b" " * 70_000 + b"}", records.TOO_LARGE),
    ],
)
def test_each_bad_record_is_rejected_with_its_reason_and_the_rest_is_scored(value, reason):
    good = orjson.dumps(json_record())
    batch = [good, value, CSV_LINE]
    out = RecordDecoder(DEFAULT_FEATURES, max_record_bytes=64 * 1024).decode(batch)
    assert [(r.index, r.reason) for r in out.rejected] == [(1, reason)]
    assert out.rejected[0].detail  # a human-readable explanation
    assert out.rows.tolist() == [0, 2]
    np.testing.assert_array_equal(out.X, np.tile(expected_row(), (2, 1)))


def test_a_batch_of_only_bad_records():
    out = RecordDecoder(DEFAULT_FEATURES).decode([b"{", b"x,y"])
    assert out.X.shape == (0, len(DEFAULT_FEATURES))
    assert [r.reason for r in out.rejected] == [records.INVALID_JSON, records.INVALID_CSV]


def test_csv_is_refused_for_a_schema_outside_the_kdd_layout():
    with pytest.raises(ValueError, match="no column"):
        RecordDecoder(("bytes_in", "bytes_out"), input_format="csv")
    auto = RecordDecoder(("bytes_in", "bytes_out"))
    out = auto.decode([b'{"bytes_in": 1, "bytes_out": 2.5}', CSV_LINE])
    assert out.X.tolist() == [[1.0, 2.5]]
    assert out.rejected[0].reason == records.INVALID_JSON


@pytest.mark.parametrize(
    "value, reason",
    [
        (b'{"a": "\\ud800"}', records.INVALID_JSON),  # a lone surrogate: not Unicode text
        (b"123", records.INVALID_JSON),  # JSON scalars are no records
        (b'"a string"', records.INVALID_JSON),
        (b"true", records.INVALID_JSON),
        (CSV_LINE.replace(b"0,icmp,ecr_i", b'0,"icmp,x",ecr_i', 1)[:-7], records.INVALID_CSV),
        (
            orjson.dumps(json_record()).replace(b'"srv_count":511.0', b'"srv_count":' + b"9" * 400),
            records.NON_FINITE,
        ),  # an integer past float range
    ],
)
def test_reasons_name_what_is_wrong(value, reason):
    out = RecordDecoder(DEFAULT_FEATURES).decode([value])
    assert [r.reason for r in out.rejected] == [reason], out.rejected


def test_a_quoted_comma_never_shifts_kdd_columns():
    """41 fields + label once the quoted comma is split: it must not be read as a record."""
    line = CSV_LINE.replace(b",smurf.", b"").replace(b"0,icmp,", b'0,"icmp,ecr_i",', 1)
    assert len(line.split(b",")) == 42
    assert RecordDecoder(DEFAULT_FEATURES).decode([line]).rejected[0].reason == records.INVALID_CSV


def test_numbers_beyond_orjson_in_unused_fields_do_not_reject_a_record():
    rec = orjson.dumps(json_record())[:-1] + b',"huge":' + b"1" * 400 + b',"big":1e999}'
    out = RecordDecoder(DEFAULT_FEATURES).decode([rec])
    assert out.rejected == [] and out.fields(0)["huge"] == int("1" * 400)
    np.testing.assert_array_equal(out.X[0], expected_row())


def test_the_key_counts_towards_the_record_size():
    good = orjson.dumps(json_record())
    out = RecordDecoder(DEFAULT_FEATURES, max_record_bytes=4096).decode(
        [good, good], extra_bytes=[10, 2_000_000]
    )
    assert out.rows.tolist() == [0]
    assert out.rejected[0].reason == records.TOO_LARGE and "key" in out.rejected[0].detail


LOGS = Path(__file__).parent / "fixtures" / "logs"


def _fitted(name: str, log: str):
    """Schema ``name`` fitted on a fixture log's records, and those records."""
    from stream_od.features import fit_schema
    from stream_od.records import field_values
    from stream_od.schema import load_schema
    from trainer.readers import read_logs

    schema = load_schema(name)
    records = read_logs([LOGS / log]).records
    return fit_schema(schema, field_values(records, schema)), records


def test_records_of_another_kind_are_skipped_not_scored_nor_dead_lettered():
    """An eve.json carries every event type; a flow model scores the flows, skips the rest
    (a ``stats`` event scored as a flow would be a flow with every counter missing), and
    still dead-letters what is not a record at all."""
    schema, flows = _fitted("suricata-flow", "suricata-eve.json")
    decoder, flow = RecordDecoder(schema), flows[0]
    batch = [
        {"event_type": "stats", "stats": {"uptime": 60}},
        flow,
        {"event_type": "dns", "proto": "UDP", "dest_port": 53, "dns": {"type": "query"}},
        b"{not json",
        {k: v for k, v in flow.items() if k != "event_type"},  # no marker: kept
        {"event_type": "alert", "flow": {"pkts_toserver": 1, "bytes_toserver": 60}},
        flow,
    ]
    out = decoder.decode([v if isinstance(v, bytes) else orjson.dumps(v) for v in batch])
    assert out.rows.tolist() == [1, 4, 6]
    assert out.skipped == [0, 2, 5]
    assert [(r.index, r.reason) for r in out.rejected] == [(3, "invalid_json")]
    np.testing.assert_array_equal(out.X[0], out.X[2])  # the same flow, the same row
    assert "event_type" not in out.fields(1)  # fields(i) still follows rows


def test_an_oversized_record_of_another_kind_is_skipped_not_dead_lettered():
    """Suricata's stats event with per-thread counters (``stats: threads: yes``) passes
    64 KiB every interval: it is an event of another kind, skipped as a small one is, not a
    bad record for the dead-letter topic; an oversized flow (or oversized junk) still is."""
    schema, flows = _fitted("suricata-flow", "suricata-eve.json")
    decoder, flow = RecordDecoder(schema, max_record_bytes=4096), flows[0]
    threads = {f"W#{i:02d}-eth0": {"capture": {"kernel_packets": i}} for i in range(200)}
    big_stats = orjson.dumps({"event_type": "stats", "stats": {"uptime": 60, "threads": threads}})
    big_flow = orjson.dumps({**flow, "padding": "x" * 5000})
    big_junk = b"{" + b" " * 5000 + b"not json"
    batch = [big_stats, orjson.dumps(flow), big_flow, big_junk, big_stats]
    assert min(len(big_stats), len(big_flow), len(big_junk)) > 4096
    out = decoder.decode(batch)
    assert out.rows.tolist() == [1] and out.skipped == [0, 4]
    assert [(r.index, r.reason) for r in out.rejected] == [(2, "too_large"), (3, "too_large")]


def test_zeek_records_of_other_logs_are_skipped_by_their_path():
    schema, conns = _fitted("zeek-conn", "zeek-conn-labeled.json")
    decoder, conn = RecordDecoder(schema), conns[0]
    batch = [
        conn,  # Zeek's own JSON writer: no _path
        {**conn, "_path": "conn"},
        {"ts": 1.0, "uid": "C1", "_path": "dns", "query": "example.com"},
        {"ts": 1.0, "uid": "C1", "_path": "http", "method": "GET"},
    ]
    out = decoder.decode([orjson.dumps(r) for r in batch])
    assert out.rows.tolist() == [0, 1] and out.skipped == [2, 3] and out.rejected == []


def test_a_batch_of_only_skipped_records_has_an_empty_matrix():
    decoder = RecordDecoder(_fitted("suricata-flow", "suricata-eve.json")[0])
    out = decoder.decode([orjson.dumps({"event_type": "stats"})] * 3)
    assert out.X.shape == (0, len(decoder.feature_names)) and out.skipped == [0, 1, 2]


def test_tagged_zeek_records_are_unwrapped_and_selected_by_their_tag():
    """zeek-kafka with ``Kafka::tag_json = T`` sends ``{"conn": {...}}``, ``{"dns": {...}}``:
    the tag is the kind, the record inside is what is scored and what an alert carries."""
    schema, conns = _fitted("zeek-conn", "zeek-conn-labeled.json")
    decoder = RecordDecoder(schema)
    conn = {k: v for k, v in conns[0].items() if k not in schema.label_fields}
    batch = [{"conn": conn}, {"dns": {"ts": 1.0, "query": "example.com"}}, conn]
    out = decoder.decode([orjson.dumps(r) for r in batch])
    assert out.rows.tolist() == [0, 2] and out.skipped == [1] and out.rejected == []
    np.testing.assert_array_equal(out.X[0], out.X[1])
    assert out.fields(0) == conn
    # the windows' read-back finds a tagged record's time inside it
    windows = RecordDecoder(_fitted("zeek-conn-windows", "zeek-conn-labeled.json")[0])
    is_old = windows.restore_test(orjson.dumps({"conn": conn}))
    assert is_old is not None and is_old(orjson.dumps({"conn": {**conn, "ts": conn["ts"] - 1e6}}))
    assert not is_old(orjson.dumps({"conn": conn}))


def test_tagged_records_with_zeek_kafkas_additional_values_are_unwrapped_too():
    """``Kafka::additional_message_values`` writes text values beside the tagged object
    (``{"conn": {...}, "zeek_server": "edge-1"}``, zeek-kafka's TaggedJSON.cc): still a conn
    record, scored as the plain one is, the values joining it; its own fields win."""
    schema, conns = _fitted("zeek-conn", "zeek-conn-labeled.json")
    decoder = RecordDecoder(schema)
    conn = {k: v for k, v in conns[0].items() if k not in schema.label_fields}
    batch = [
        {"conn": conn, "zeek_server": "edge-1", "uid": "not-the-records"},
        {"dns": {"ts": 1.0, "query": "example.com"}, "zeek_server": "edge-1"},
        conn,
    ]
    out = decoder.decode([orjson.dumps(r) for r in batch])
    assert out.rows.tolist() == [0, 2] and out.skipped == [1] and out.rejected == []
    np.testing.assert_array_equal(out.X[0], out.X[1])
    assert out.fields(0) == {**conn, "zeek_server": "edge-1"}


@pytest.mark.parametrize(
    "record",
    [
        {"ts": 1.0, "id": {"orig_h": "10.0.0.1"}},  # a time first: a record of its own
        {"id": {"orig_h": "10.0.0.1"}, "ts": 1.0},  # an object first, a number beside it
        {"id": {"orig_h": "10.0.0.1"}, "resp": {"h": "10.0.0.2"}},
        {},
    ],
)
def test_records_that_are_not_tagged_are_left_whole(record):
    from stream_od.schema.select import untagged

    assert untagged(record) is None


def test_untagged_schemas_leave_one_key_records_alone():
    schema, flows = _fitted("suricata-flow", "suricata-eve.json")
    out = RecordDecoder(schema).decode([orjson.dumps({"flow": flows[0]["flow"]})])
    assert out.rows.tolist() == [0] and out.fields(0) == {"flow": flows[0]["flow"]}


def test_zeek_ts_millis_gives_the_windows_of_epoch_seconds():
    """Zeek's JSON writer with JSON::TS_MILLIS writes ``ts`` as integer milliseconds; the
    window features (2 s, 100 connections within an hour) must be those of the same
    connections with ``ts`` in seconds, not of a timeline 1000 times as long."""
    schema, recs = _fitted("zeek-conn-windows", "zeek-conn-labeled.json")
    millis = [round(r["ts"] * 1000) for r in recs]
    as_seconds = [orjson.dumps({**r, "ts": m / 1000}) for r, m in zip(recs, millis)]
    as_millis = [orjson.dumps({**r, "ts": m}) for r, m in zip(recs, millis)]
    a = RecordDecoder(schema).decode(as_seconds)
    b = RecordDecoder(schema).decode(as_millis)
    assert a.rejected == b.rejected == []
    counts = [schema.feature_names.index(c) for c in ("win.src.count", "win.dst.n_count")]
    assert (a.X[:, counts] > np.log1p(1)).any()  # the fixture has windows of several
    np.testing.assert_array_equal(a.X, b.X)


def test_a_time_beyond_float_range_does_not_stop_a_windows_batch():
    """Valid JSON that only Python's parser reads (an integer of 400 digits) in ``ts``: the
    record has no usable time (it takes the watermark) and the batch is decoded."""
    schema, recs = _fitted("zeek-conn-windows", "zeek-conn-labeled.json")
    good = [orjson.dumps(r) for r in recs[:3]]
    huge = orjson.dumps({**recs[3], "ts": 0}).replace(b'"ts":0,', b'"ts":' + b"9" * 400 + b",")
    assert b"9" * 400 in huge
    out = RecordDecoder(schema).decode([*good, huge])
    assert out.rows.tolist() == [0, 1, 2, 3] and out.rejected == []


def test_a_dotted_path_is_a_flat_key_then_a_nested_one_then_zeeks_underscored_name():
    from stream_od.records import field_value, path_values

    rows = [
        {"id.orig_h": "a", "id": {"orig_h": "x"}, "id_orig_h": "y"},  # the flat key first
        {"id": {"orig_h": "b"}, "id_orig_h": "y"},  # then the nested path
        {"id_orig_h": "c"},  # then Log::default_scope_sep = "_"
        {"id_orig_p": 1},
        {"orig_h": "d"},  # never the last part alone
    ]
    assert path_values(rows, "id.orig_h") == ["a", "b", "c", None, None]
    assert [field_value(r, "id.orig_h") for r in rows] == ["a", "b", "c", None, None]
    assert path_values([{"ts_x": 1}], "ts") == [None]  # a path without dots is one key
