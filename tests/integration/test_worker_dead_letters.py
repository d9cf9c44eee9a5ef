"""Bad records go to the dead-letter topic with their reason; good ones in the same batch score."""

from __future__ import annotations

import json

import orjson
from confluent_kafka import Producer

from stream_od import records
from stream_od.kafka import dead_letters
from tests.worker_support import WorkerProcess, metric_values


def bad_values(good: bytes) -> list[tuple[bytes, str]]:
    rec = orjson.loads(good)
    return [
        (b"{this is not json", records.INVALID_JSON),
        (
            orjson.dumps({k: v for k, v in rec.items() if k != "dst_host_count"}),
            records.MISSING_FEATURE,
        ),
        (orjson.dumps({**rec, "srv_count": "many"}), records.NON_NUMERIC),
        (json.dumps({**rec, "serror_rate": float("nan")}).encode(), records.NON_FINITE),
        (json.dumps({**rec, "serror_rate": float("inf")}).encode(), records.NON_FINITE),
        (orjson.dumps({**rec, "padding": "x" * 5000}), records.TOO_LARGE),
        (b"", records.EMPTY),
        (b"0,tcp,http,SF", records.INVALID_CSV),
    ]


def test_every_kind_of_bad_record_is_dead_lettered_and_the_rest_scored(
    kafka_bootstrap, worker_topics, mahalanobis_artifact, kdd_stream, read_topic, tmp_path
):
    _, path = mahalanobis_artifact
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_MAX_RECORD_BYTES": "4096",
        "STREAM_OD_MAX_BATCH_RECORDS": "200",
    }
    topic = env["STREAM_OD_INPUT_TOPIC"]
    bad = bad_values(kdd_stream.values[0])
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    sent_bad: dict[bytes, tuple[bytes, str]] = {}
    n_good = 0
    for i in range(600):  # bad records scattered through batches of good ones
        key = f"k{i}".encode()
        if i % 25 == 7:
            value, reason = bad[(i // 25) % len(bad)]
            sent_bad[key] = (value, reason)
        else:
            value = kdd_stream.values[i]
            n_good += 1
        producer.produce(topic, value=value, key=key, headers=[("origin", b"test")])
    assert producer.flush(30) == 0

    with WorkerProcess(env, tmp_path / "worker.log").start() as worker:
        text = worker.wait_settled(600)
        assert worker.terminate() == 0, worker.log()

    dlq = read_topic(env["STREAM_OD_DEAD_LETTER_TOPIC"])
    scored = read_topic(env["STREAM_OD_SCORES_TOPIC"])
    assert len(scored) == n_good and len(dlq) == len(sent_bad)
    assert not {m.key() for m in scored} & set(sent_bad)
    for m in dlq:
        value, reason = sent_bad[m.key()]
        headers = dict(m.headers())
        assert (m.value() or b"") == value  # original bytes, untouched
        assert headers[dead_letters.REASON].decode() == reason
        assert headers[dead_letters.DETAIL]
        assert headers[dead_letters.SOURCE_TOPIC].decode() == topic
        assert int(headers[dead_letters.SOURCE_OFFSET]) >= 0
        assert 0 <= int(headers[dead_letters.SOURCE_PARTITION]) < 3
        assert int(headers[dead_letters.SOURCE_TIMESTAMP]) > 0
        assert headers["origin"] == b"test"  # the input's own headers are kept
    by_reason = metric_values(text, "stream_od_dead_letters_total")
    assert sum(by_reason.values()) == len(sent_bad)
    assert {r for _, r in sent_bad.values()} == {
        lbl.split('"')[1] for lbl, v in by_reason.items() if v > 0
    }
