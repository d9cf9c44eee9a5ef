"""Alert documents, severities and top features (pure logic)."""

from __future__ import annotations

import numpy as np
import orjson

from stream_od.alerts import AlertPolicy, Origin, decode_key, severities, top_features


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


def test_alert_document_carries_origin_record_score_and_model():
    policy = AlertPolicy(feature_names=("a", "b"), threshold=1.0, score_scale=1.0,
                         model_version="m-1", detector="mahalanobis",
                         severity_margins=(0.5, 2.0, 8.0), top_k=1)
    scores = np.array([4.0])
    docs = policy.build([Origin("in", 2, 41, 1_700_000_000_000, b"k-7")], [{"a": 1, "note": "x"}],
                        scores, policy.severities(scores), np.array([[1.0, 9.0]]),
                        np.array([[0.2, 3.0]]), detected_at_ms=5)
    doc = orjson.loads(docs[0])
    assert doc["source"] == {"topic": "in", "partition": 2, "offset": 41,
                             "timestamp_ms": 1_700_000_000_000}
    assert doc["key"] == "k-7" and doc["record"] == {"a": 1, "note": "x"}
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
    record = {"deep": deep, "big": 10 ** 40, "text": "\ud800x", "ok": 1.5}
    out = orjson.loads(dumps_bounded({"record": record, "score": 2.0}, 900_000))
    assert out["score"] == 2.0 and out["record"]["big"] == str(10 ** 40)
    assert out["record"]["ok"] == 1.5 and out["record"]["text"].endswith("x")
    huge = orjson.loads(dumps_bounded({"record": {"x": "y" * 2_000_000}, "score": 1.0}, 900_000))
    assert huge["record"]["stream_od_omitted"]["reason"] == "too_large" and huge["score"] == 1.0
