import warnings

import numpy as np
import pytest

from stream_od.features import Standardizer


def test_standardizer_roundtrip_bitwise():
    X = np.random.default_rng(0).normal(size=(100, 3)) * [1, 10, 0]
    st = Standardizer().fit(X)
    assert st.scale_[2] == 1.0  # constant column
    st2 = Standardizer.from_dict(st.to_dict())
    assert np.array_equal(st.transform(X), st2.transform(X))
    np.testing.assert_allclose(st.transform(X)[:, :2].std(0), 1.0)


def test_a_binary_column_that_never_varied_weighs_as_a_value_seen_once():
    # columns: a 0/1 column that varied (one 1 in 99 rows), two that never did (all 0, all 1),
    # a numeric one that never did
    n = 99
    X = np.zeros((n, 4))
    X[0, 0] = 1.0
    X[:, 2] = 1.0
    X[:, 3] = 7.0
    st = Standardizer().fit(X, binary=[0, 1, 2])
    seen_once = st.transform(np.array([[1.0, 0, 1, 7]]))[0, 0]
    assert seen_once == pytest.approx(np.sqrt(n - 1), rel=1e-12)
    never = st.transform(np.array([[0.0, 1.0, 0.0, 8.0]]))[0]
    # as if one row of n + 1 had differed: 1 / sqrt(p (1 - p)) units with p = 1 / (n + 1),
    # a little more than the value seen once
    assert never[1] == pytest.approx((n + 1) / np.sqrt(n), rel=1e-12)
    assert never[2] == pytest.approx(-(n + 1) / np.sqrt(n), rel=1e-12)
    assert never[1] > seen_once
    assert st.scale_[3] == 1.0 and never[3] == 1.0  # a numeric unit is unknown: scale 1
    # not named binary: scale 1, as before
    assert Standardizer().fit(X).scale_[1] == 1.0
    # the rows it was fitted on still map to 0 in the never-varied columns
    assert np.array_equal(st.transform(X)[:, 1:], np.zeros((n, 3)))
    st2 = Standardizer.from_dict(st.to_dict())
    assert np.array_equal(st2.scale_, st.scale_)


def test_held_columns_stay_at_the_fit_rows_value_whatever_the_row_has():
    X = np.random.default_rng(1).normal(size=(50, 4))
    X[:, 2:] = [0.0, 1.0]  # a field no fit row had: its value column and its indicator
    st = Standardizer().fit(X, binary=[3], held=[2, 3])
    row = np.array([[0.5, -0.5, 9.0, 0.0]])  # the field arrives
    out = st.transform(row)
    assert np.array_equal(out[:, 2:], np.zeros((1, 2)))
    assert np.array_equal(out[:, :2], Standardizer().fit(X).transform(row)[:, :2])
    # the fit rows themselves are unchanged (they had the training value there anyway)
    assert np.array_equal(st.transform(X), Standardizer().fit(X, binary=[3]).transform(X))
    st2 = Standardizer.from_dict(st.to_dict())
    assert st.to_dict()["held"] == [2, 3]
    assert np.array_equal(st2.transform(row), out)
    # none held: written as before, so an artifact without held columns keeps its bytes
    assert "held" not in Standardizer().fit(X).to_dict()


@pytest.mark.parametrize("held", [[4], [-1], ["2"], 2])
def test_held_columns_out_of_range_or_not_indices_are_refused(held):
    d = Standardizer().fit(np.zeros((3, 4))).to_dict() | {"held": held}
    with pytest.raises(ValueError, match="held columns"):
        Standardizer.from_dict(d)
    if isinstance(held, list) and all(isinstance(c, int) for c in held):
        with pytest.raises(ValueError, match="out of range"):
            Standardizer().fit(np.zeros((3, 4)), held=held)


def test_standardizer_rejects_nan_and_wrong_width():
    st = Standardizer().fit(np.ones((3, 2)))
    with pytest.raises(ValueError):
        st.transform(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError):
        st.transform(np.ones((1, 3)))


# -- the encoder: field values -> matrix ------------------------------------------------------

import orjson  # noqa: E402

from stream_od import records  # noqa: E402
from stream_od.features import (  # noqa: E402
    FeatureEncoder,
    absent_fields,
    category_key,
    fit_schema,
    missing_counts,
    missing_shares,
    unseen_counts,
    unseen_shares,
)
from stream_od.records import RecordDecoder, field_values  # noqa: E402
from stream_od.schema import FeatureSchema, Field, SchemaError, load_schema  # noqa: E402


def _schema() -> FeatureSchema:
    return FeatureSchema(
        fields=(
            Field(name="bytes", transform="log1p", missing="default", default=0, indicator=True),
            Field(name="proto", kind="categorical", missing="default", default="-", min_count=2),
            Field(name="local", kind="boolean", missing="default", default=False, indicator=True),
            Field(name="dur", clip=(0, 10)),
        )
    )


TRAIN = [
    {"bytes": 10, "proto": "tcp", "local": True, "dur": 1.0},
    {"bytes": 0, "proto": "tcp", "local": False, "dur": 20.0},
    {"proto": "udp", "dur": 0.5},
    {"bytes": 5, "proto": "udp", "local": True, "dur": 2.0},
    {"bytes": 5, "proto": "icmp", "local": True, "dur": 2.0},
]


def test_fit_keeps_categories_seen_min_count_times_most_frequent_first():
    fitted = fit_schema(_schema(), field_values(TRAIN, _schema()))
    assert fitted.fields[1].vocabulary == ("tcp", "udp")  # icmp seen once < min_count 2
    assert fitted.feature_names == (
        "bytes",
        "bytes:missing",
        "proto=tcp",
        "proto=udp",
        "proto=<other>",
        "local",
        "local:missing",
        "dur",
    )


def test_absent_fields_are_those_no_training_record_carries():
    schema = _schema()
    without_local = [{k: v for k, v in r.items() if k != "local"} for r in TRAIN]
    assert absent_fields(schema, field_values(without_local, schema)) == ("local",)
    assert absent_fields(schema, field_values(TRAIN, schema)) == ()
    # a parsed float column (the KDD CSV path) always has its values
    assert absent_fields(schema, [np.zeros(3)] * len(schema.fields)) == ()


def test_encode_transforms_one_hot_missing_defaults_and_indicators():
    fitted = fit_schema(_schema(), field_values(TRAIN, _schema()))
    enc = FeatureEncoder(fitted).encode(
        field_values(TRAIN + [{"proto": "gre", "dur": -3}], fitted), 6
    )
    assert enc.rejected == {}
    X = enc.X
    np.testing.assert_allclose(X[:, 0], np.log1p([10, 0, 0, 5, 5, 0]))
    assert X[:, 1].tolist() == [0, 0, 1, 0, 0, 1]  # bytes was missing
    assert X[:, 2:5].tolist() == [
        [1, 0, 0],
        [1, 0, 0],
        [0, 1, 0],
        [0, 1, 0],
        [0, 0, 1],
        [0, 0, 1],
    ]  # icmp and never-seen gre: <other>
    assert X[:, 5].tolist() == [1, 0, 0, 1, 1, 0] and X[:, 6].tolist() == [0, 0, 1, 0, 0, 1]
    assert X[:, 7].tolist() == [1.0, 10.0, 0.5, 2.0, 2.0, 0.0]  # clipped to [0, 10]


def test_unseen_counts_count_the_rows_in_each_categoricals_other_column():
    fitted = fit_schema(_schema(), field_values(TRAIN, _schema()))
    assert fitted.unseen_columns == {"proto": fitted.index("proto=<other>")}
    rows = TRAIN + [{"proto": "gre", "dur": -3}, {"proto": "sctp"}, {"proto": "udp"}]
    enc = FeatureEncoder(fitted).encode(field_values(rows, fitted), len(rows))
    assert unseen_counts(enc.X, fitted) == {"proto": 3}  # icmp (once in training), gre, sctp
    assert unseen_counts(enc.X[:0], fitted) == {"proto": 0}
    assert unseen_shares(enc.X, fitted) == {"proto": 3 / len(rows)}
    assert unseen_shares(enc.X[:0], fitted) == {}
    numeric_only = load_schema("kdd99")
    assert numeric_only.unseen_columns == {}
    assert unseen_counts(np.zeros((4, len(numeric_only))), numeric_only) == {}


def test_missing_counts_count_the_rows_in_each_fields_was_missing_column():
    fitted = fit_schema(_schema(), field_values(TRAIN, _schema()))
    assert fitted.missing_columns == {
        "bytes": fitted.index("bytes:missing"),
        "local": fitted.index("local:missing"),
    }  # dur has no indicator, proto is categorical
    rows = [{"dur": 1}, {"bytes": 3, "dur": 1}, {"bytes": None, "local": "T", "dur": 2}]
    enc = FeatureEncoder(fitted).encode(field_values(rows, fitted), len(rows))
    assert missing_counts(enc.X, fitted) == {"bytes": 2, "local": 2}
    assert missing_shares(enc.X, fitted) == {"bytes": 2 / 3, "local": 2 / 3}
    assert missing_counts(enc.X[:0], fitted) == {"bytes": 0, "local": 0}
    assert missing_shares(enc.X[:0], fitted) == {}
    assert load_schema("kdd99").missing_columns == {}


def test_required_fields_and_wrong_types_are_rejected_with_the_first_problem():
    fitted = fit_schema(_schema(), field_values(TRAIN, _schema()))
    bad = [
        {"proto": "tcp"},  # dur is required
        {"bytes": "lots", "dur": 1},  # not a number
        {"proto": {"name": "tcp"}, "dur": 1},  # an object is no category
        {"local": "maybe", "dur": 1},  # not a boolean
        {"local": "T", "dur": 1},
    ]  # Zeek's T is
    enc = FeatureEncoder(fitted).encode(field_values(bad, fitted), len(bad))
    assert {r: reason for r, (reason, _) in enc.rejected.items()} == {
        0: records.MISSING_FEATURE,
        1: records.NON_NUMERIC,
        2: records.INVALID_TYPE,
        3: records.NON_NUMERIC,
    }
    assert "dur" in enc.rejected[0][1] and "'lots'" in enc.rejected[1][1]


def test_a_record_with_none_of_the_fields_is_refused_and_one_with_any_is_scored():
    """Defaults stand in for fields a sensor left unset; a JSON object with none of the
    schema's fields (a shipper's envelope, another log) is no record of it."""
    schema = FeatureSchema(fields=tuple(f for f in _schema().fields if f.name != "dur"))
    fitted = fit_schema(schema, field_values(TRAIN, schema))
    rows = [
        {"message": '{"bytes": 10, "proto": "tcp"}', "@timestamp": "2024-01-01T00:00:00Z"},
        {"proto": None, "bytes": None},  # JSON null is absent too
        {"proto": "tcp"},  # the one categorical is enough
        {"local": "F"},  # so is a boolean
        {},
        {"bytes": 3},
    ]
    enc = FeatureEncoder(fitted).encode(field_values(rows, fitted), len(rows))
    assert {r: reason for r, (reason, _) in enc.rejected.items()} == {
        0: records.NO_SCHEMA_FIELDS,
        1: records.NO_SCHEMA_FIELDS,
        4: records.NO_SCHEMA_FIELDS,
    }
    assert "none of the 3 fields of schema" in enc.rejected[0][1]
    assert "message" in enc.rejected[0][1]  # the usual cause, named
    # the same check whichever column comes first, and when no column is missing anywhere
    for order in (rows[2:4], rows[5:], rows[2:4] + rows[5:]):
        assert FeatureEncoder(fitted).encode(field_values(order, fitted), len(order)).rejected == {}
    # a required field's absence is still the first problem named
    kdd = FeatureEncoder(fit_schema(_schema(), field_values(TRAIN, _schema())))
    assert kdd.encode(field_values([{}], kdd.schema), 1).rejected[0][0] == records.MISSING_FEATURE


def test_a_field_no_training_record_has_stops_fitting_with_its_name():
    schema = FeatureSchema(
        fields=(Field(name="bytes"), Field(name="flow.byts", missing="default", default=0))
    )
    with pytest.raises(SchemaError, match="field 'flow.byts': no training record has"):
        fit_schema(schema, field_values([{"bytes": 1, "flow": {"bytes": 2}}], schema))


def test_category_keys_read_json_and_zeek_values_alike():
    assert [category_key(v) for v in ("tcp", True, 443, 443.0, 0.5, b"SF", [1], None)] == [
        "tcp",
        "true",
        "443",
        "443",
        "0.5",
        "SF",
        None,
        None,
    ]


def test_nested_and_flat_dotted_paths():
    schema = FeatureSchema(
        fields=(
            Field(name="id.resp_p", kind="categorical", vocabulary=("80",)),
            Field(name="flow.bytes_toserver"),
        )
    )
    rows = [
        {"id.resp_p": 80, "flow": {"bytes_toserver": 7}},  # Zeek flat key, EVE nesting
        {"id": {"resp_p": 22}, "flow.bytes_toserver": 3},
    ]
    assert field_values(rows, schema) == [[80, 22], [7, 3]]


ZEEK_S0 = {
    "ts": 1655071231.749548,
    "uid": "CEL3aLvvNGvO6Ecoa",
    "id.orig_h": "193.201.9.232",
    "id.orig_p": 46563,
    "id.resp_h": "147.32.81.167",
    "id.resp_p": 3933,
    "proto": "tcp",
    "conn_state": "S0",
    "local_orig": False,
    "local_resp": True,
    "missed_bytes": 0,
    "history": "S",
    "orig_pkts": 2,
    "orig_ip_bytes": 80,
    "resp_pkts": 0,
    "resp_ip_bytes": 0,
}  # no duration, orig_bytes, resp_bytes, service: Zeek left them unset


def test_an_unanswered_syn_from_zeeks_json_writer_is_scored_not_refused():
    schema = load_schema("zeek-conn")
    answered = {**ZEEK_S0, "duration": 1.0, "orig_bytes": 1, "resp_bytes": 1, "service": "http"}
    fitted = fit_schema(schema, field_values([ZEEK_S0, answered] * 5, schema))  # min_count 5
    out = RecordDecoder(fitted).decode([orjson.dumps(ZEEK_S0)])
    assert out.rejected == [] and out.X.shape == (1, len(fitted.feature_names))
    row = dict(zip(fitted.feature_names, out.X[0]))
    assert row["duration:missing"] == 1.0 and row["orig_bytes"] == 0.0
    assert row["service=-"] == 1.0  # an unset service is a category of its own


def test_a_flag_no_training_record_has_takes_its_default_with_a_warning():
    """Zeek leaves local_orig/local_resp unset in every record when Site::local_nets is empty
    (a plain ``zeek -r``), and Suricata writes tcp.rst only when a RST was seen: the built-in
    schemas must train on such captures, each flag its default in every row."""
    schema = load_schema("zeek-conn")
    answered = {**ZEEK_S0, "duration": 1.0, "orig_bytes": 1, "resp_bytes": 1, "service": "http"}
    unconfigured = [
        {k: v for k, v in r.items() if k not in ("local_orig", "local_resp")}
        for r in [ZEEK_S0, answered] * 5
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = fit_schema(schema, field_values(unconfigured, schema))
    assert [str(w.message).split(";")[0].split(",")[0] for w in caught] == [
        "field 'local_orig': no training record has 'local_orig'",
        "field 'local_resp': no training record has 'local_resp'",
    ]
    out = RecordDecoder(fitted).decode([orjson.dumps(unconfigured[0]), orjson.dumps(ZEEK_S0)])
    assert out.rejected == []
    rows = [dict(zip(fitted.feature_names, x)) for x in out.X]
    assert rows[0]["local_orig"] == 0.0 and rows[0]["local_orig:missing"] == 1.0
    assert rows[1]["local_resp"] == 1.0 and rows[1]["local_resp:missing"] == 0.0


def test_a_category_no_training_record_has_takes_its_default_with_a_warning():
    """A UDP-only Suricata capture has no tcp object, and an older Suricata writes no
    flow.reason: suricata-flow must still train, each such field one category (its default)."""
    schema = load_schema("suricata-flow")
    udp = {
        "event_type": "flow",
        "proto": "UDP",
        "dest_port": 53,
        "app_proto": "dns",
        "flow": {
            "pkts_toserver": 1,
            "pkts_toclient": 1,
            "bytes_toserver": 80,
            "bytes_toclient": 120,
            "age": 0,
            "state": "established",
            "alerted": False,
        },
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = fit_schema(schema, field_values([udp] * 10, schema))
    missing = {str(w.message).split(":")[0] for w in caught}
    assert {"field 'flow.reason'", "field 'tcp.state'"} <= missing
    tcp = {**udp, "proto": "TCP", "tcp": {"state": "closed", "syn": True}, "app_proto": "tls"}
    out = RecordDecoder(fitted).decode([orjson.dumps(udp), orjson.dumps(tcp)])
    assert out.rejected == []
    rows = [dict(zip(fitted.feature_names, x)) for x in out.X]
    state = [n for n in fitted.feature_names if n.startswith("tcp.state")]
    assert len(state) == 2  # the default alone, and the "other" bucket
    assert rows[0][state[0]] == 1.0 and rows[1][state[1]] == 1.0  # closed: unseen, so "other"


def test_a_flag_no_training_record_has_is_still_an_error_without_a_default():
    schema = FeatureSchema(fields=(Field(name="bytes"), Field(name="tcp.rst", kind="boolean")))
    with pytest.raises(SchemaError, match="field 'tcp.rst': no training record has"):
        fit_schema(schema, field_values([{"bytes": 1, "tcp": {"syn": True}}], schema))


# -- event time -----------------------------------------------------------------------------

from stream_od.features import epoch_seconds  # noqa: E402


def test_epoch_seconds_reads_zeek_ts_millis_as_milliseconds():
    """JSON::TS_MILLIS (LogAscii::json_timestamps, the zeek-kafka plugin's
    Kafka::json_timestamps) writes a time as an unsigned integer of milliseconds."""
    assert epoch_seconds(1655071231749) == pytest.approx(1655071231.749, abs=1e-6)
    assert epoch_seconds(1655071231.749548) == 1655071231.749548  # TS_EPOCH: a double
    assert epoch_seconds(1655071231) == 1655071231.0  # whole seconds stay seconds
    assert epoch_seconds(10**11 - 1) == 10**11 - 1  # seconds up to the year 5138
    assert epoch_seconds(10**11) == 10**8  # milliseconds from March 1973
    assert epoch_seconds(1e11 - 0.5) == 1e11 - 0.5  # a float is seconds


@pytest.mark.parametrize(
    "value",
    [1e11, 1.7e15, 1_700_000_000_000_000_000, 1e300, -1.0, "5200-01-01T00:00:00"],
    ids=["float-5138", "microseconds-as-seconds", "nanoseconds", "1e300", "before-1970", "iso"],
)
def test_an_event_time_no_capture_can_have_is_no_time(value):
    """Taken as the latest time seen, one such record would make every other key's traffic
    windows look forgotten, and its own key's window grow without end (records treat a
    missing time as "now")."""
    assert epoch_seconds(value) is None


def test_epoch_seconds_of_an_integer_beyond_float_range_is_none_not_an_error():
    assert epoch_seconds(10**400) is None
    assert epoch_seconds(-(10**400)) is None
