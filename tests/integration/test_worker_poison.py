"""No record stops a partition: oversized values, keys and headers, records an alert cannot
be written from as they are, and wire-level oddities, each scored or dead-lettered with its
reason while the worker goes on and the partition advances."""

from __future__ import annotations

import hashlib
import json

import orjson
import pytest
from confluent_kafka import Producer

from stream_od import records
from stream_od.kafka import dead_letters as dl
from tests.worker_support import WorkerProcess, wait_consumed

MB = 1_000_000


def _deep(levels: int) -> dict:
    root: dict = {}
    node = root
    for _ in range(levels):
        node["n"] = {}
        node = node["n"]
    return root


def poison(good: dict, anomalous: dict) -> list[tuple[str, bytes, bytes | None, list, str]]:
    """(name, value, key, headers, expected outcome: a dead-letter reason or "scored")."""
    good_b = orjson.dumps(good)
    return [
        ("value 1.01 MB", b"x" * 1_010_000, b"k1", [], records.TOO_LARGE),
        ("value 1.5 MB", b"{" + b" " * 1_500_000 + b"}", b"k2", [], records.TOO_LARGE),
        ("value 10 MB", b"y" * 10 * MB, b"k3", [], records.TOO_LARGE),
        (
            "JSON object 1.48 MB",
            orjson.dumps({**good, "pad": "z" * 1_480_000}),
            b"k4",
            [],
            records.TOO_LARGE,
        ),
        (
            "invalid, 2 MB header",
            b"{not json",
            b"k5",
            [("trace", b"h" * 2 * MB)],
            records.INVALID_JSON,
        ),  # its dead letter drops the header and says so
        ("invalid, 2 MB key", b"{not json", b"K" * 2 * MB, [], records.TOO_LARGE),
        ("valid, 2 MB key", good_b, b"Q" * 2 * MB, [], records.TOO_LARGE),
        (
            "anomalous, nested 300 deep",
            orjson.dumps(anomalous)[:-1] + b',"deep":' + json.dumps(_deep(300)).encode() + b"}",
            b"k8",
            [],
            "alert",
        ),
        (
            "anomalous, integer past 64 bits",
            orjson.dumps(anomalous)[:-1] + b',"huge":' + b"7" * 400 + b"}",
            b"k9",
            [],
            "alert",
        ),
        ("lone surrogate", b'{"x": "\\ud800"}', b"k10", [], records.INVALID_JSON),
        ("JSON scalar", b"12345", b"k11", [], records.INVALID_JSON),
        ("quoted CSV", b'0,"tcp,http",SF' + b",0" * 39, b"k12", [], records.INVALID_CSV),
        (
            "a value beyond the training range",  # finite, but the model's score overflows
            orjson.dumps({**good, "srv_count": 1e200}),
            b"k14",
            [],
            records.NON_FINITE_SCORE,
        ),
        (
            "anomalous, a protocol int() refuses",  # "²".isdigit() is True
            orjson.dumps({**anomalous, "protocol_type": "²"}),
            b"k15",
            [],
            "alert",
        ),
        (
            "anomalous, a lone surrogate behind 1e999",  # orjson gives up, Python's json reads it
            orjson.dumps(anomalous)[:-1] + b',"zz":1e999,"protocol_type":"\\ud800"}',
            b"k16",
            [],
            "alert",
        ),
        ("good after all that", good_b, b"k13", [], "scored"),
    ]


CLASSES = [case[0] for case in poison({}, {})][:-1]  # the last one is the good record


@pytest.fixture(scope="module")
def good_and_anomalous(mahalanobis_artifact, kdd_stream):
    """The stream's most normal and most anomalous records, by the artifact's own scores."""
    artifact, _ = mahalanobis_artifact
    values = [orjson.loads(v) for v in kdd_stream.values]
    scores = artifact.score(
        artifact.encoder.encode(
            [[v[f.path] for v in values] for f in artifact.schema.fields], len(values)
        ).X
    )
    assert scores.max() > artifact.threshold
    return values[int(scores.argmin())], values[int(scores.argmax())]


@pytest.mark.parametrize("name", CLASSES)
def test_a_poison_record_never_stops_the_partition(
    name,
    kafka_bootstrap,
    new_topic,
    worker_topics,
    mahalanobis_artifact,
    good_and_anomalous,
    read_topic,
    tmp_path,
):
    """One class at a time, on a topic of its own: the poison record, then a good one behind
    it that must be scored (the partition advanced) by a worker that is still alive."""
    _, path = mahalanobis_artifact
    everything = poison(*good_and_anomalous)
    cases = [c for c in everything if c[0] == name] + [everything[-1]]
    # The input topic takes records up to 16 MB, as a permissive upstream's might; the output
    # topics keep the broker's default limit (about 1 MB).
    topic = new_topic(partitions=1, prefix="poison", config={"max.message.bytes": "16000000"})
    env = {
        **worker_topics,
        "STREAM_OD_INPUT_TOPIC": topic,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
    }
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "message.max.bytes": 15 * MB,
            "enable.idempotence": True,
        }
    )
    for _, value, key, headers, _ in cases:
        producer.produce(topic, value=value, key=key, headers=headers)
    assert producer.flush(60) == 0

    with WorkerProcess(env, tmp_path / "worker.log").start() as w:
        w.wait_for("stream_od_records_consumed_total", len(cases))
        wait_consumed(kafka_bootstrap, env["STREAM_OD_GROUP_ID"], topic, w, timeout=60)
        assert w.terminate() == 0, w.log()

    dead = read_topic(env["STREAM_OD_DEAD_LETTER_TOPIC"])
    scored = read_topic(env["STREAM_OD_SCORES_TOPIC"])
    alerts = read_topic(env["STREAM_OD_ALERTS_TOPIC"])
    by_offset = {int(dict(m.headers())[dl.SOURCE_OFFSET]): m for m in dead}
    scored_offsets = {orjson.loads(m.value())["kafka"]["offset"] for m in scored}
    alert_offsets = {orjson.loads(m.value())["kafka"]["offset"] for m in alerts}
    assert len(dead) + len(scored) == len(cases)  # each record once, one way or the other
    for offset, (case, value, key, headers, expected) in enumerate(cases):
        if expected in ("scored", "alert"):
            assert offset in scored_offsets and offset not in by_offset, case
            assert (offset in alert_offsets) == (expected == "alert"), case
            continue
        m = by_offset[offset]
        h = dict(m.headers())
        assert h[dl.REASON].decode() == expected, (case, h[dl.DETAIL])
        if h.get(dl.TRUNCATED) is None:
            assert m.value() == value and m.key() == key, case  # kept whole
        else:
            assert h[dl.ORIGINAL_SIZE] == str(len(value)).encode(), case
            assert h[dl.ORIGINAL_SHA256] == hashlib.sha256(value).hexdigest().encode(), case
            assert value.startswith(m.value()), case
            if key is not None and len(key) > dl.SMALL_BYTES:
                assert m.key() is None and h[dl.ORIGINAL_KEY_SIZE] == str(len(key)).encode()
            if headers and dl.record_size(None, None, headers) > dl.SMALL_BYTES:
                assert "trace" not in h and h[dl.ORIGINAL_HEADERS].startswith(b"1 headers")
