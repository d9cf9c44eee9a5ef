"""Model versions on a running worker, on the real broker: a swap mid-stream through the topic
registry, and refusals (tampered, unsigned, HMAC-only, rollback) through the directory
registry.  Workers hold only the Ed25519 public key (from a file, or the environment); the
publisher holds the private key."""

from __future__ import annotations

import itertools
import pathlib
import shutil

import numpy as np
import orjson
import pytest

from stream_od.artifact import Artifact
from stream_od.registry import keys, signing
from stream_od.registry.directory import DirectoryRegistry
from tests.integration.conftest import offline_scores, train_mahalanobis
from tests.worker_support import WorkerProcess, metric_total, metric_values
from trainer.publish import publish
from trainer.replay import Encoded, produce

KEY = "integration-signing-key-0123456789"  # an HMAC key, which these workers do not accept


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory):
    """``(private key, public key file)`` as ``stream-od keygen`` writes them."""
    private, public = keys.generate(tmp_path_factory.mktemp("keys") / "pair")
    return keys.parse_private_key(private.read_bytes(), "test"), public


@pytest.fixture(scope="module")
def second_artifact(tmp_path_factory, kdd_train_path):
    """v2: the same detector as ``mahalanobis_artifact`` trained on fewer rows."""
    return train_mahalanobis(kdd_train_path, 20_000, tmp_path_factory.mktemp("artifact") / "v2")


def chunk(stream: Encoded, start: int, stop: int) -> Encoded:
    return Encoded(values=stream.values[start:stop], labels=stream.labels[start:stop])


def send(stream: Encoded, start: int, stop: int, topic: str, bootstrap: str) -> None:
    produce(chunk(stream, start, stop), topic=topic, bootstrap_servers=bootstrap, start_seq=start)


def by_seq(messages) -> dict[int, tuple[int, dict]]:
    out: dict[int, tuple[int, dict]] = {}
    for m in messages:
        seq = int(m.key())
        assert seq not in out, f"record {seq} scored twice"
        out[seq] = (m.offset(), orjson.loads(m.value()))
    return out


def transactions(scores) -> list[list[dict]]:
    """Score documents grouped by the transaction (= batch) that wrote them: one worker writes the
    one-partition scores topic, so a batch is a run of consecutive offsets and each commit marker
    takes the offset in between."""
    docs = sorted(scores.values(), key=lambda od: od[0])
    runs, prev = [], None
    for offset, doc in docs:
        if prev is None or offset != prev + 1:
            runs.append([])
        runs[-1].append(doc)
        prev = offset
    return runs


def test_publish_v2_mid_stream_swaps_between_batches(
    kafka_bootstrap,
    worker_topics,
    new_topic,
    mahalanobis_artifact,
    second_artifact,
    kdd_stream,
    read_topic,
    tmp_path,
    key_pair,
):
    (v1, v1_path), (v2, v2_path) = mahalanobis_artifact, second_artifact
    assert v1.version != v2.version
    private_key, public_file = key_pair
    models = new_topic(config={"cleanup.policy": "compact"}, prefix="models")
    publish(v1_path, topic=models, bootstrap_servers=kafka_bootstrap, private_key=private_key)
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_MODEL_SOURCE": "topic",
        "STREAM_OD_MODEL_TOPIC": models,
        "STREAM_OD_MODEL_POLL_INTERVAL_S": "0.2",
        "STREAM_OD_MODEL_PUBLIC_KEY_FILE": str(public_file),
        "STREAM_OD_MAX_BATCH_RECORDS": "200",
    }
    inp = env["STREAM_OD_INPUT_TOPIC"]
    with WorkerProcess(env, tmp_path / "worker.log").start() as worker:
        send(kdd_stream, 0, 3000, inp, kafka_bootstrap)
        worker.wait_for("stream_od_records_scored_total", 3000)
        publish(v2_path, topic=models, bootstrap_servers=kafka_bootstrap, private_key=private_key)
        # Keep streaming in small chunks: the worker swaps at the start of the next batch once
        # its watcher has verified v2.
        swapped_at = None
        for start in range(3000, 15_000, 200):
            send(kdd_stream, start, start + 200, inp, kafka_bootstrap)
            text = worker.wait_for("stream_od_records_scored_total", start + 200)
            if metric_total(text, "stream_od_model_swaps_total") >= 1:
                swapped_at = start + 200
                break
        assert swapped_at is not None, worker.log()
        n = swapped_at + 1000
        send(kdd_stream, swapped_at, n, inp, kafka_bootstrap)  # after the swap: v2 only
        text = worker.wait_for("stream_od_records_scored_total", n)
        assert worker.terminate() == 0, worker.log()

    scores = by_seq(read_topic(env["STREAM_OD_SCORES_TOPIC"]))
    alerts = {
        int(m.key()): orjson.loads(m.value()) for m in read_topic(env["STREAM_OD_ALERTS_TOPIC"])
    }
    assert sorted(scores) == list(range(n)), "a record was lost"
    version = {seq: doc["model_version"] for seq, (_, doc) in scores.items()}
    # Before the publish: v1; after the swap was observed: v2.
    assert {version[s] for s in range(3000)} == {v1.version}
    assert {version[s] for s in range(swapped_at, n)} == {v2.version}
    # Each record's score is what the version it names computes offline.
    values = kdd_stream.values[:n]
    expected = {v1.version: offline_scores(v1, values), v2.version: offline_scores(v2, values)}
    got = np.array([scores[s][1]["score"] for s in range(n)])
    want = np.array([expected[version[s]][s] for s in range(n)])
    np.testing.assert_array_equal(got, want)
    # No batch mixes versions, and versions never go back: v1 batches, then v2 batches.
    runs = [{doc["model_version"] for doc in run} for run in transactions(scores)]
    assert all(len(r) == 1 for r in runs), "a batch was scored by two versions"
    order = [k for k, _ in itertools.groupby(r.pop() for r in runs)]
    assert order == [v1.version, v2.version]
    # Every alert names the version that scored its record.
    for seq, doc in alerts.items():
        assert doc["model_version"] == version[seq]
        assert doc["score"] == expected[version[seq]][seq]
    assert any(doc["model_version"] == v2.version for doc in alerts.values())
    assert metric_total(text, "stream_od_model_swaps_total") == 1
    assert metric_total(text, "stream_od_model_refusals_total") == 0
    assert any(v2.version in labels for labels in metric_values(text, "stream_od_model_info"))


def test_tampered_unsigned_hmac_and_older_versions_are_refused_and_the_old_model_keeps_scoring(
    kafka_bootstrap,
    worker_topics,
    mahalanobis_artifact,
    second_artifact,
    kdd_stream,
    read_topic,
    tmp_path,
    key_pair,
):
    (v1, v1_path), (v2, v2_path) = mahalanobis_artifact, second_artifact
    private_key, public_file = key_pair
    registry = tmp_path / "registry"
    publish(v1_path, registry_dir=registry, private_key=private_key)
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_MODEL_SOURCE": "directory",
        "STREAM_OD_MODEL_REGISTRY_DIR": str(registry),
        "STREAM_OD_MODEL_POLL_INTERVAL_S": "0.2",
        "STREAM_OD_MODEL_PUBLIC_KEY": public_file.read_text(),  # PEM in the environment
        "STREAM_OD_MAX_BATCH_RECORDS": "200",
    }
    inp = env["STREAM_OD_INPUT_TOPIC"]

    def variant(suffix: str, **kw) -> pathlib.Path:
        art = Artifact(
            detector=v2.detector,
            standardizer=v2.standardizer,
            schema=v2.schema,
            version=v2.version + suffix,
            metrics=v2.metrics,
            **kw,
        )
        return art.save(tmp_path / ("variant" + suffix))

    with WorkerProcess(env, tmp_path / "worker.log").start() as worker:
        send(kdd_stream, 0, 2000, inp, kafka_bootstrap)
        worker.wait_for("stream_od_records_scored_total", 2000)

        # v2, signed, then one byte of its arrays changed before it reaches the registry.
        tampered = tmp_path / "stage" / v2.version
        shutil.copytree(v2_path, tampered)
        signing.sign_ed25519(tampered, private_key)
        npz = bytearray((tampered / "detector.npz").read_bytes())
        npz[len(npz) // 2] ^= 0x01
        (tampered / "detector.npz").write_bytes(bytes(npz))
        DirectoryRegistry(registry).publish(tampered)
        worker.wait_for("stream_od_model_refusals_total", 1)

        # A sound artifact published without a key, and one signed with the HMAC key only.
        unsigned = variant("-unsigned")
        publish(unsigned, registry_dir=registry, private_key=None)
        worker.wait_for("stream_od_model_refusals_total", 2)
        hmac_only = variant("-hmac")
        publish(hmac_only, registry_dir=registry, key=KEY.encode(), private_key=None)
        worker.wait_for("stream_od_model_refusals_total", 3)

        # Signed with the right key, but created before the version in use: a rollback.
        older = variant("-older", created_at="2020-01-01T00:00:00Z")
        publish(older, registry_dir=registry, private_key=private_key)
        text = worker.wait_for("stream_od_model_refusals_total", 4)

        send(kdd_stream, 2000, 4000, inp, kafka_bootstrap)
        text = worker.wait_for("stream_od_records_scored_total", 4000)
        assert worker.terminate() == 0, worker.log()
        log = worker.log_path.read_text()

    refusals = metric_values(text, "stream_od_model_refusals_total")
    assert refusals['{reason="integrity"}'] == 1 and refusals['{reason="unsigned"}'] == 2
    assert refusals['{reason="rollback"}'] == 1
    assert sum(refusals.values()) == 4, refusals
    assert metric_total(text, "stream_od_model_swaps_total") == 0
    assert f"refused model {v2.version}" in log and "reason=integrity" in log
    assert "sha256 mismatch for detector.npz" in log
    assert f"refused model {v2.version}-unsigned" in log and "reason=unsigned" in log
    assert f"refused model {v2.version}-hmac" in log and "only an HMAC signature" in log
    assert f"refused model {v2.version}-older" in log and "reason=rollback" in log
    assert f"STREAM_OD_MODEL_PIN_VERSION={v2.version}-older" in log
    assert f"keeping model {v1.version}" in log
    assert KEY not in log

    scores = by_seq(read_topic(env["STREAM_OD_SCORES_TOPIC"]))
    assert sorted(scores) == list(range(4000))
    assert {doc["model_version"] for _, doc in scores.values()} == {v1.version}
    alerts = read_topic(env["STREAM_OD_ALERTS_TOPIC"])
    assert alerts and {orjson.loads(m.value())["model_version"] for m in alerts} == {v1.version}
    np.testing.assert_array_equal(
        [scores[s][1]["score"] for s in range(4000)], offline_scores(v1, kdd_stream.values[:4000])
    )
