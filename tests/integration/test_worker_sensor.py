"""Sensor-log records through a real worker on the real broker: what ``stream-od replay`` sends
from a Zeek conn log or Suricata EVE is scored exactly once, never dead-lettered for the fields
a sensor leaves unset, and scored as offline scoring (``stream-od score``) scores it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from stream_od.artifact import Artifact
from stream_od.detector import detector_class
from stream_od.features import (
    FeatureEncoder,
    Standardizer,
    fit_schema,
    missing_counts,
    unseen_counts,
)
from stream_od.records import RecordDecoder, field_values
from stream_od.schema import load_schema
from tests.worker_support import WorkerProcess, metric_total, metric_values
from trainer.replay import Encoded, log_stream, produce
from trainer.score import score_values

EVE_FIXTURE = Path(__file__).parents[1] / "fixtures" / "logs" / "suricata-eve.json"
ZEEK_UNSET = ("duration", "orig_bytes", "service")  # fields Zeek leaves out when they don't apply


def stream_through_worker(
    stream: Encoded, path, env: dict[str, str], bootstrap: str, read_topic, log_path
) -> tuple[np.ndarray, str]:
    """Produce ``stream``, let one worker take all of it, stop it cleanly; check that no record
    was dead-lettered and each was scored once on a read_committed reader, and return the
    scores in stream order with the worker's last metrics page."""
    env = {
        **env,
        "STREAM_OD_BOOTSTRAP_SERVERS": bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_MAX_BATCH_RECORDS": "500",
    }
    with WorkerProcess(env, log_path).start() as worker:
        produce(stream, topic=env["STREAM_OD_INPUT_TOPIC"], bootstrap_servers=bootstrap)
        text = worker.wait_settled(len(stream))
        assert worker.terminate() == 0, worker.log()
    assert metric_total(text, "stream_od_transaction_aborts_total") == 0
    scores: dict[int, float] = {}
    for m in read_topic(env["STREAM_OD_SCORES_TOPIC"]):
        seq = int(m.key())
        assert seq not in scores, f"record {seq} scored twice"
        scores[seq] = orjson.loads(m.value())["score"]
    assert read_topic(env["STREAM_OD_DEAD_LETTER_TOPIC"]) == []
    assert sorted(scores) == list(range(len(stream)))
    return np.array([scores[i] for i in range(len(stream))]), text


def settle(
    stream: Encoded, path, topics: dict[str, str], bootstrap: str, log_path
) -> tuple[dict[str, str], str]:
    """Produce ``stream``, let one worker settle every record, stop it cleanly; the worker's
    environment and its last metrics page."""
    env = {**topics, "STREAM_OD_BOOTSTRAP_SERVERS": bootstrap, "STREAM_OD_ARTIFACT_PATH": str(path)}
    with WorkerProcess(env, log_path).start() as worker:
        produce(stream, topic=env["STREAM_OD_INPUT_TOPIC"], bootstrap_servers=bootstrap)
        text = worker.wait_settled(len(stream))
        assert worker.terminate() == 0, worker.log()
    return env, text


def offline(artifact: Artifact, values: list[bytes]) -> np.ndarray:
    """Offline scores of the same bytes through the worker's decoder; none may be refused."""
    results = list(score_values(artifact, values))
    refused = [r for r in results if "score" not in r]
    assert refused == [], refused[:3]
    return np.array([r["score"] for r in results])


def test_zeek_log_replay_scored_exactly_once_as_offline(
    kafka_bootstrap,
    worker_topics,
    zeek_mahalanobis_artifact,
    zeek_replay_path,
    read_topic,
    tmp_path,
):
    artifact, path = zeek_mahalanobis_artifact
    stream = log_stream([zeek_replay_path], schema="zeek-conn")
    records = [orjson.loads(v) for v in stream.values]
    for name in ZEEK_UNSET:  # the stream does test unset fields
        assert any(name not in r for r in records), f"every record has {name!r}"
    assert not any("label" in r or "detailedlabel" in r for r in records)

    got, text = stream_through_worker(
        stream, path, worker_topics, kafka_bootstrap, read_topic, tmp_path / "worker.log"
    )
    np.testing.assert_allclose(got, offline(artifact, stream.values), rtol=1e-6)

    # values the training day did not have, per field: counted as offline encoding counts them
    enc = FeatureEncoder(artifact.schema).encode(
        field_values(records, artifact.schema), len(records)
    )
    expected = unseen_counts(enc.X, artifact.schema)
    assert set(expected) == {"proto", "service", "conn_state", "history", "id.resp_p"}
    assert sum(expected.values()) > 0  # the later day does bring values the first had not
    got_unseen = metric_values(text, "stream_od_unseen_category_records_total")
    assert got_unseen == {f'{{field="{k}"}}': float(v) for k, v in expected.items()}
    baseline = metric_values(text, "stream_od_model_unseen_category_share")
    shares = artifact.metrics["unseen_category_share"]
    assert baseline == {f'{{field="{k}"}}': pytest.approx(v) for k, v in shares.items()}

    # fields the records lacked, per field with a "was missing" column, counted the same way
    lacked = missing_counts(enc.X, artifact.schema)
    assert lacked["duration"] > 0 and lacked["orig_pkts"] == 0  # unset when it does not apply
    got_missing = metric_values(text, "stream_od_missing_field_records_total")
    assert got_missing == {f'{{field="{k}"}}': float(v) for k, v in lacked.items()}
    baseline = metric_values(text, "stream_od_model_missing_field_share")
    shares = artifact.metrics["missing_field_share"]
    assert set(shares) == set(artifact.schema.missing_columns)
    assert baseline == {f'{{field="{k}"}}': pytest.approx(v) for k, v in shares.items()}


def synthetic_eve_flows(n: int, seed: int = 0) -> list[dict]:
    """EVE flow events shaped like Suricata's: nested ``flow`` counters, a ``tcp`` object on TCP
    flows only, ``app_proto`` sometimes absent; enough of each category to fit a vocabulary."""
    rng = np.random.default_rng(seed)
    flows = []
    for i in range(n):
        tcp = rng.random() < 0.7
        pkts = int(rng.integers(1, 40))
        flow = {
            "pkts_toserver": pkts,
            "pkts_toclient": int(rng.integers(0, pkts + 1)),
            "bytes_toserver": int(pkts * rng.integers(60, 1500)),
            "bytes_toclient": int(pkts * rng.integers(0, 1500)),
            "age": int(rng.integers(0, 30)),
            "alerted": bool(rng.random() < 0.05),
            "state": str(rng.choice(["new", "established", "closed"])),
            "reason": str(rng.choice(["timeout", "shutdown"])),
        }
        event = {
            "event_type": "flow",
            "flow_id": i,
            "proto": "TCP" if tcp else "UDP",
            "dest_port": int(rng.choice([443, 80, 22] if tcp else [53, 123])),
            "flow": flow,
        }
        if rng.random() < 0.8:
            event["app_proto"] = str(rng.choice(["tls", "http", "ssh"] if tcp else ["dns", "ntp"]))
        if tcp:
            event["tcp"] = {
                "syn": True,
                "ack": bool(rng.random() < 0.9),
                "fin": bool(rng.random() < 0.6),
                "rst": bool(rng.random() < 0.1),
                "state": str(rng.choice(["closed", "established", "syn_sent"])),
            }
        flows.append(event)
    return flows


@pytest.fixture(scope="module")
def eve_artifact(tmp_path_factory) -> tuple[Artifact, Path]:
    """A Mahalanobis artifact on a fitted suricata-flow schema (nested ``flow.*`` paths)."""
    records = synthetic_eve_flows(400)
    schema = load_schema("suricata-flow")
    schema = fit_schema(schema, field_values(records, schema))
    enc = FeatureEncoder(schema).encode(field_values(records, schema), len(records))
    assert not enc.rejected
    std = Standardizer().fit(enc.X)
    det = detector_class("mahalanobis")().fit(std.transform(enc.X))
    det.infer_threshold(std.transform(enc.X), 99.0)
    art = Artifact(detector=det, standardizer=std, schema=schema)
    path = art.save(tmp_path_factory.mktemp("artifact") / "eve-mahalanobis")
    return Artifact.load(path), path


def test_suricata_eve_flows_scored_without_dead_letters(
    kafka_bootstrap, worker_topics, eve_artifact, read_topic, tmp_path
):
    artifact, path = eve_artifact
    whole = log_stream([EVE_FIXTURE], schema="suricata-flow")  # every event type
    flows = [i for i, v in enumerate(whole.values) if orjson.loads(v)["event_type"] == "flow"]
    stream = Encoded(
        values=[whole.values[i] for i in flows],
        labels=whole.labels[flows],
        details=whole.details[flows],
    )
    records = [orjson.loads(v) for v in stream.values]
    assert len(stream) == 6 and all(r["event_type"] == "flow" for r in records)
    assert any("tcp" not in r for r in records) and any("app_proto" not in r for r in records)
    # The nested counters are read, not defaulted: flow.bytes_toserver is log1p of the value.
    X = RecordDecoder(artifact.schema).decode(stream.values).X
    column = artifact.feature_names.index("flow.bytes_toserver")
    np.testing.assert_allclose(
        X[:, column], np.log1p([r["flow"]["bytes_toserver"] for r in records])
    )

    got, _ = stream_through_worker(
        stream, path, worker_topics, kafka_bootstrap, read_topic, tmp_path / "worker.log"
    )
    np.testing.assert_allclose(got, offline(artifact, stream.values), rtol=1e-6)


def test_a_whole_eve_json_is_taken_its_other_event_types_skipped(
    kafka_bootstrap, worker_topics, eve_artifact, read_topic, tmp_path
):
    """Suricata writes every event type to one eve.json, and a shipper sends it on as it is:
    the worker scores the flow events, skips the stats, dns, alert and http events (counted,
    committed, never scored nor dead-lettered), and offline scoring says the same."""
    artifact, path = eve_artifact
    values = EVE_FIXTURE.read_bytes().splitlines()
    kinds = [orjson.loads(v)["event_type"] for v in values]
    flows = [i for i, k in enumerate(kinds) if k == "flow"]
    assert len(values) == 10 and len(flows) == 6  # the fixture's 4 others: the point here
    stream = Encoded(values=values, labels=np.full(len(values), "-", dtype=object))
    env, text = settle(stream, path, worker_topics, kafka_bootstrap, tmp_path / "worker.log")
    assert metric_values(text, "stream_od_records_skipped_total") == {
        '{reason="not_selected"}': 4.0
    }
    assert metric_total(text, "stream_od_records_scored_total") == 6
    assert read_topic(env["STREAM_OD_DEAD_LETTER_TOPIC"]) == []
    scored = sorted(int(m.key()) for m in read_topic(env["STREAM_OD_SCORES_TOPIC"]))
    assert scored == flows
    alerts = read_topic(env["STREAM_OD_ALERTS_TOPIC"])
    assert {int(orjson.loads(m.value())["kafka"]["key"]) for m in alerts} <= set(flows)
    offline_results = list(score_values(artifact, values))
    assert [i for i, r in enumerate(offline_results) if "skipped" in r] == sorted(
        set(range(len(values))) - set(flows)
    )


@pytest.mark.slow
def test_a_vaegmm_scores_zeek_records_in_the_worker_as_offline(
    kafka_bootstrap, worker_topics, new_topic, zeek_replay_path, read_topic, tmp_path
):
    """The network path: the worker's micro-batches are not offline's 1,000-row batches, and
    the scores are still equal bit for bit.  (With TensorFlow's float32 products they were not:
    1,998 of 2,000 agreed to 1e-6, the largest difference 1e-4; the numpy pass sums each layer
    in a fixed order, whatever the batch.)  The worker scores each distinct row of a
    micro-batch once (010 repeats many), offline here scores every row: the same bits."""
    from trainer.readers import read_logs
    from trainer.site import SiteConfig, train_site

    train = zeek_replay_path.with_name("008-zeek-mixed.conn.log.labeled")
    cfg = SiteConfig(
        data=[str(train)], schema="zeek-conn", detector="vaegmm", epochs=3, target_alert_rate=0.01
    )
    art = train_site(cfg, read_logs([train]).records, progress=False, log=lambda _: None)
    path = art.save(tmp_path / "zeek-vaegmm")
    artifact = Artifact.load(path)
    stream = log_stream([zeek_replay_path], schema="zeek-conn", count=2_000)
    got, _ = stream_through_worker(
        stream, path, worker_topics, kafka_bootstrap, read_topic, tmp_path / "worker.log"
    )
    artifact.place_scoring("cpu", "exact", "each")
    want = offline(artifact, stream.values)
    np.testing.assert_array_equal(got, want)
    assert ((got > artifact.threshold) == (want > artifact.threshold)).all()

    # STREAM_OD_SCORING_SUMS=blas: the BLAS product in each layer, the same scores to 1e-12
    # (the issue asks 1e-6), no longer bit for bit; the worker says how it scores
    topics = {
        **worker_topics,
        "STREAM_OD_INPUT_TOPIC": new_topic(partitions=3, prefix="in"),
        "STREAM_OD_SCORES_TOPIC": new_topic(prefix="scores"),
        "STREAM_OD_GROUP_ID": f"{worker_topics['STREAM_OD_GROUP_ID']}-blas",
        "STREAM_OD_INSTANCE_ID": f"{worker_topics['STREAM_OD_INSTANCE_ID']}-blas",
        "STREAM_OD_SCORING_SUMS": "blas",
    }
    fast, text = stream_through_worker(
        stream, path, topics, kafka_bootstrap, read_topic, tmp_path / "worker-blas.log"
    )
    np.testing.assert_allclose(fast, want, rtol=1e-12)
    assert ((fast > artifact.threshold) == (want > artifact.threshold)).all()
    assert 'backend="numpy-blas"' in text


def test_window_features_in_the_worker_equal_offline_scoring(
    kafka_bootstrap,
    worker_topics,
    new_topic,
    zeek_windows_artifact,
    zeek_replay_path,
    read_topic,
    tmp_path,
):
    """One partition, so the worker sees the records in the file's order: its windows, carried
    across its micro-batches, give the scores ``stream-od score`` gives, bit for bit."""
    artifact, path = zeek_windows_artifact
    assert artifact.schema.windows is not None
    stream = log_stream([zeek_replay_path], schema="zeek-conn-windows")
    env = {**worker_topics, "STREAM_OD_INPUT_TOPIC": new_topic(partitions=1, prefix="win")}
    got, _ = stream_through_worker(
        stream, path, env, kafka_bootstrap, read_topic, tmp_path / "worker.log"
    )
    np.testing.assert_array_equal(got, offline(artifact, stream.values))
    count = artifact.schema.feature_names.index("win.src.count")
    X = RecordDecoder(artifact.schema).encode_records([orjson.loads(v) for v in stream.values]).X
    assert X[:, count].max() > np.log1p(10)  # the windows did fill: not a test of zeros


def filebeat_envelope(value: bytes, seq: int) -> bytes:
    """A Zeek JSON line as Filebeat's Kafka output sends it by default (its ``json`` codec):
    the line as text in ``message``, beside Filebeat's own fields."""
    return orjson.dumps(
        {
            "@timestamp": "2022-06-14T12:00:00.000Z",
            "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.13.4"},
            "message": value.decode(),
            "log": {"file": {"path": "/opt/zeek/logs/current/conn.log"}, "offset": 512 * seq},
            "input": {"type": "filestream"},
            "ecs": {"version": "8.0.0"},
            "agent": {"type": "filebeat", "version": "8.13.4"},
        }
    )


def test_records_without_any_schema_field_are_dead_lettered_not_scored(
    kafka_bootstrap,
    worker_topics,
    zeek_mahalanobis_artifact,
    zeek_replay_path,
    read_topic,
    tmp_path,
):
    """A shipper's envelope (Filebeat's JSON, the Zeek line inside as text) carries none of the
    schema's fields: scored with every field at its default, each would be an alert about
    nothing.  Each goes to the dead-letter topic with its reason instead, beside the real
    records, which are scored as before."""
    artifact, path = zeek_mahalanobis_artifact
    zeek = log_stream([zeek_replay_path], schema="zeek-conn").values[:60]
    wrapped = {i for i in range(len(zeek)) if i % 4 == 3}
    values = [filebeat_envelope(v, i) if i in wrapped else v for i, v in enumerate(zeek)]
    # offline scoring of the same bytes says the same
    offline_results = list(score_values(artifact, values))
    assert {i for i, r in enumerate(offline_results) if "dead_letter" in r} == wrapped
    assert {r["dead_letter"] for r in offline_results if "dead_letter" in r} == {"no_schema_fields"}
    stream = Encoded(values=values, labels=np.full(len(values), "-", dtype=object))
    env, text = settle(stream, path, worker_topics, kafka_bootstrap, tmp_path / "worker.log")
    assert metric_values(text, "stream_od_dead_letters_total") == {
        '{reason="no_schema_fields"}': float(len(wrapped))
    }
    dead = read_topic(env["STREAM_OD_DEAD_LETTER_TOPIC"])
    assert sorted(int(m.key()) for m in dead) == sorted(wrapped)
    assert all(m.value() == values[int(m.key())] for m in dead)  # the envelope, as it came
    scored = sorted(int(m.key()) for m in read_topic(env["STREAM_OD_SCORES_TOPIC"]))
    assert scored == sorted(set(range(len(values))) - wrapped)
    alerted = {
        int(orjson.loads(m.value())["kafka"]["key"])
        for m in read_topic(env["STREAM_OD_ALERTS_TOPIC"])
    }
    assert not alerted & wrapped
