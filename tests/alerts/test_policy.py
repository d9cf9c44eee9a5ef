"""Alert facts and the native document, severities, risk scores and top features (pure
logic)."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from stream_od.alerts import AlertPolicy, Origin, decode_key, severities, top_features
from stream_od.alerts.policy import risk_scores
from stream_od.schema import load_schema


def test_severity_grades_the_margin_in_score_scale_units():
    scores = np.array([10.5, 11.9, 12.0, 17.9, 100.0])
    got = severities(scores, threshold=10.0, scale=1.0, margins=(1.0, 2.0, 8.0)).tolist()
    assert got == ["low", "medium", "high", "high", "critical"]


def test_top_features_are_the_largest_contributions_first():
    contrib = np.array([[0.1, 5.0, 2.0], [3.0, 0.0, 1.0]])
    X = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    tops = top_features(contrib, X, ("a", "b", "c"), k=2)
    assert [[t["feature"] for t in row] for row in tops] == [["b", "c"], ["a", "c"]]
    assert tops[0][0] == {"feature": "b", "contribution": 5.0, "value": 2.0}


def test_top_features_rank_by_value_then_column_whatever_the_values():
    """Both ways of choosing (finite contributions; anything else) agree with the definition:
    sort each row by (-value, column), NaN after every number, and take the first k."""
    rng = np.random.default_rng(7)
    for trial in range(300):
        n, width = int(rng.integers(1, 6)), int(rng.integers(1, 9))
        contrib = rng.integers(-3, 4, size=(n, width)).astype(float)  # many ties
        if trial % 3 == 1:
            contrib[rng.random((n, width)) < 0.3] = np.nan
        if trial % 3 == 2:
            contrib[rng.random((n, width)) < 0.2] = rng.choice([np.inf, -np.inf])
        X = rng.normal(size=(n, width))
        names = tuple(f"f{j}" for j in range(width))
        k = int(rng.integers(1, width + 2))
        tops = top_features(contrib, X, names, k)
        for i, row in enumerate(tops):
            key = [
                (np.isnan(c), -c if not np.isnan(c) else 0.0, j) for j, c in enumerate(contrib[i])
            ]
            want = [j for *_, j in sorted(key)][: min(k, width)]
            assert [names.index(t["feature"]) for t in row] == want
            assert [t["value"] for t in row] == [X[i, j] for j in want]


def test_alert_document_carries_origin_record_score_and_model():
    policy = AlertPolicy(
        feature_names=("a", "b"),
        threshold=1.0,
        score_scale=1.0,
        model_version="m-1",
        detector="mahalanobis",
        severity_margins=(0.5, 2.0, 8.0),
        top_k=1,
    )
    scores = np.array([4.0])
    (alert,) = policy.facts(
        [Origin("in", 2, 41, 1_700_000_000_000, b"k-7")],
        [{"a": 1, "note": "x"}],
        scores,
        np.array([[1.0, 9.0]]),
        np.array([[0.2, 3.0]]),
        detected_at_ms=5,
    )
    doc = orjson.loads(policy.render(alert))
    assert doc["kafka"] == {
        "topic": "in",
        "partition": 2,
        "offset": 41,
        "timestamp_ms": 1_700_000_000_000,
        "key": "k-7",
    }
    assert doc["record"] == {"a": 1, "note": "x"} and "source" not in doc
    assert doc["event_time_ms"] == 1_700_000_000_000 and doc["event_time_source"] == "kafka"
    assert doc["score"] == 4.0 and doc["threshold"] == 1.0 and doc["severity"] == "high"
    assert doc["model_version"] == "m-1"
    assert doc["top_features"] == [{"feature": "b", "contribution": 3.0, "value": 9.0}]


def test_binary_keys_survive_as_base64():
    assert decode_key(b"\xff\x00") == "base64:/wA="
    assert decode_key(None) is None


def test_an_alert_never_fails_on_its_records_content():
    """Nested deeper than orjson writes, integers past 64 bits, lone surrogates, huge."""
    import orjson

    from stream_od.alerts import dumps_bounded

    deep: dict = {}
    node = deep
    for _ in range(300):
        node["a"] = {}
        node = node["a"]
    record = {"deep": deep, "big": 10**40, "text": "\ud800x", "ok": 1.5}

    def build(rec):
        return {"record": rec, "score": 2.0}

    out = orjson.loads(dumps_bounded(build, record, 900_000))
    assert out["score"] == 2.0 and out["record"]["big"] == str(10**40)
    assert out["record"]["ok"] == 1.5 and out["record"]["text"].endswith("x")
    huge = orjson.loads(dumps_bounded(build, {"x": "y" * 2_000_000}, 900_000))
    assert huge["record"]["stream_od_omitted"]["reason"] == "too_large" and huge["score"] == 2.0


def zeek_policy(fmt: str = "native") -> AlertPolicy:
    return AlertPolicy(
        feature_names=("a", "b"),
        threshold=1.0,
        score_scale=1.0,
        model_version="m-1",
        detector="vaegmm",
        severity_margins=(0.5, 2.0, 8.0),
        top_k=1,
        schema=load_schema("zeek-conn"),
        alert_format=fmt,
    )


ZEEK = {
    "ts": 1_700_000_000.25,
    "uid": "CxYz1",
    "id.orig_h": "192.168.1.5",
    "id.orig_p": 51_000,
    "id.resp_h": "10.0.0.9",
    "id.resp_p": 445,
    "proto": "tcp",
    "conn_state": "S0",
    "label": "Malicious",
    "detailed-label": "PartOfAHorizontalPortScan",
}


def facts(policy: AlertPolicy, record: dict, offset: int = 7, score: float = 3.0):
    return policy.facts(
        [Origin("in", 0, offset, 1_800_000_000_000, b"k")],
        [record],
        np.array([score]),
        np.zeros((1, 2)),
        np.ones((1, 2)),
        5,
    )[0]


def test_an_alert_promotes_the_connection_and_takes_the_records_own_time():
    alert = facts(zeek_policy(), ZEEK)
    c = alert.connection
    assert (c.source_ip, c.source_port, c.destination_ip, c.destination_port) == (
        "192.168.1.5",
        51_000,
        "10.0.0.9",
        445,
    )
    assert c.transport == "tcp" and c.session_id == "CxYz1" and c.community_id.startswith("1:")
    assert alert.event_time_ms == 1_700_000_000_250 and alert.event_time_source == "record"


def test_label_fields_never_leave_in_an_alert():
    for fmt in ("native", "ecs", "ocsf"):
        policy = zeek_policy(fmt)
        text = policy.render(facts(policy, ZEEK)).decode()
        assert "Malicious" not in text and "PartOfAHorizontalPortScan" not in text, fmt
        assert "S0" in text  # the rest of the record is there


def test_the_alert_id_is_the_same_for_the_same_record_and_model_only():
    policy = zeek_policy()
    first = facts(policy, ZEEK, offset=7).id
    assert facts(policy, dict(ZEEK), offset=900).id == first  # a re-sent copy, same connection
    assert facts(policy, {**ZEEK, "uid": "Other"}).id != first
    newer = AlertPolicy(
        feature_names=("a", "b"),
        threshold=1.0,
        score_scale=1.0,
        model_version="m-2",
        detector="vaegmm",
        severity_margins=(0.5, 2.0, 8.0),
        top_k=1,
        schema=load_schema("zeek-conn"),
    )
    assert facts(newer, ZEEK).id != first
    no_session = {k: v for k, v in ZEEK.items() if k != "uid"}
    assert facts(policy, no_session, offset=7).id == facts(policy, no_session, offset=7).id
    assert facts(policy, no_session, offset=7).id != facts(policy, no_session, offset=8).id


def test_headers_name_format_severity_and_schema():
    policy = zeek_policy("ecs")
    headers = dict(policy.headers(facts(policy, ZEEK, score=100.0)))
    assert headers == {
        "stream_od.format": b"ecs",
        "stream_od.schema": b"zeek-conn",
        "stream_od.severity": b"critical",
        "stream_od.kind": b"alert",
    }


def test_headers_of_a_summary_and_of_one_not_yet_graded():
    """The lists are built once per severity and kind; a summary whose severity is not set yet
    (suppression makes it ungraded, finish_summaries grades it) still gets its own."""
    from dataclasses import replace

    from stream_od.alerts.facts import Summary

    policy = zeek_policy("native")
    alert = facts(policy, ZEEK, score=100.0)
    summary = replace(alert, summary=Summary(3, 1, 2, 100.0, 60.0, {"source_ip": "10.0.0.1"}, "x"))
    assert dict(policy.headers(summary))["stream_od.kind"] == b"summary"
    assert policy.headers(alert) is policy.headers(alert)  # shared, not rebuilt
    ungraded = dict(policy.headers(replace(summary, severity="")))
    assert ungraded["stream_od.severity"] == b"" and ungraded["stream_od.kind"] == b"summary"


def test_risk_scores_fall_in_the_severity_bands():
    margins = (0.5, 2.0, 8.0)
    scores = 1.0 + np.array([0.0, 0.49, 0.5, 1.99, 2.0, 7.99, 8.0, 50.0, 1e6])
    risk = risk_scores(scores, 1.0, 1.0, margins)
    sev = severities(scores, 1.0, 1.0, margins)
    bands = {"low": (0, 21), "medium": (22, 47), "high": (48, 73), "critical": (74, 100)}
    for r, s in zip(risk, sev):
        lo, hi = bands[s]
        assert lo <= r <= hi, (r, s)
    assert list(risk) == sorted(risk)


def test_csv_records_keep_number_types_in_alerts():
    from stream_od.records import csv_fields

    fields = csv_fields(
        b"0,tcp,http,SF,181,5450,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,8,8,0.00,0.00,"
        b"0.00,0.00,1.00,0.00,0.00,9,9,1.00,0.00,0.11,0.00,0.00,0.00,0.00,0.00,"
        b"normal."
    )
    assert fields["src_bytes"] == 181 and fields["serror_rate"] == 0.0
    assert fields["protocol_type"] == "tcp" and fields["label"] == "normal."


@pytest.mark.parametrize("fmt", ["native", "ecs", "ocsf"])
def test_an_alert_never_fails_on_what_its_connection_is_read_from(fmt):
    """The connection is promoted from the record as it is: a port or protocol of digits int()
    refuses ("²"), a lone surrogate in the uid or protocol (Python's JSON parser lets one
    through when orjson has given up on the record for a number like 1e999).  Each once raised
    building or writing the alert, and the worker then died on the same batch at every start."""

    policy = zeek_policy(fmt)
    record = {**ZEEK, "id.resp_p": "²", "proto": "\ud800tcp", "uid": "C\ud800", "zz": math.inf}
    alert = facts(policy, record)
    assert alert.connection.destination_port is None
    sid, transport = alert.connection.session_id, alert.connection.transport
    assert sid.startswith("C\ufffd") and transport.endswith("\ufffdtcp")  # U+FFFD: replaced
    sid.encode() and transport.encode()  # valid UTF-8 now
    assert sid in policy.render(alert).decode()
    assert facts(policy, {**ZEEK, "proto": "²"}).connection.transport == "²"


def test_suppression_keys_on_record_values_orjson_cannot_write():
    """An entity taken from a record path may hold a lone surrogate or an integer past 64 bits:
    the suppression key (and the summary that names it) is written all the same."""
    from stream_od.alerts.volume import AlertVolume

    policy = zeek_policy()
    by = ("uid", "id.resp_p")
    record = {**ZEEK, "uid": "C\ud800", "id.resp_p": 10**40}
    alerts = [facts(policy, record, offset=i) for i in range(3)]
    state = AlertVolume(60.0, by, "vaegmm").partition(("in", 0))
    # one built alert at a time, and a batch's records before their alerts are built (the worker)
    assert [state.admit(a)[0] for a in alerts] == [True, False, False]
    admitted = AlertVolume(60.0, by, "vaegmm").admit_records(
        policy, [a.kafka for a in alerts], [record] * 3, np.full(3, 3.0)
    )
    assert admitted.emit == [0]  # the other two are held back under the same entity


def test_a_connection_that_cannot_be_read_leaves_the_alert_without_one(monkeypatch, caplog):
    """The last line of defence behind the checks above: should reading a record's connection
    raise on a value no test foresaw, that record's alert goes out without a connection (and
    the log says which record), the batch's other alerts keep theirs."""
    from stream_od.alerts import identity

    real = identity._port

    def port(value):
        if value == 4444:
            raise RuntimeError("a port nobody foresaw")
        return real(value)

    monkeypatch.setattr(identity, "_port", port)
    policy = zeek_policy()
    alerts = policy.facts(
        [Origin("in", 0, 7, 1_800_000_000_000, None), Origin("in", 0, 8, 1_800_000_000_000, None)],
        [{**ZEEK, "id.resp_p": 4444}, ZEEK],
        np.array([3.0, 3.0]),
        np.zeros((2, 2)),
        np.ones((2, 2)),
        5,
    )
    assert alerts[0].connection.source_ip is None and alerts[1].connection.source_ip
    assert "in[0]@7" in caplog.text
    assert orjson.loads(policy.render(alerts[0]))["record"]["id.resp_p"] == 4444


@pytest.mark.parametrize("fmt", ["native", "ecs", "ocsf"])
def test_an_unwritable_fact_outside_the_record_is_written_made_safe(fmt):
    """Text that reached a connection some other way than the identity reader (which cleans
    it) is made writable with the whole document, not left to fail the batch."""
    import dataclasses

    from stream_od.alerts.facts import Connection

    policy = zeek_policy(fmt)
    alert = dataclasses.replace(facts(policy, ZEEK), connection=Connection(session_id="C\ud800"))
    assert "C\ufffd" in policy.render(alert).decode()
