"""The dashboard, the alert rules and the model registry against a real worker.

A real ``stream-od worker`` subprocess on the local broker, configured with the environment the
compose file gives its workers (only the broker address, topics, group, port and poll interval
replaced for the test), loads its model from a models topic created with the compose setup
job's settings. The model signing keys are a real pair made for the test, in the files compose
would mount: the worker reads the public key at the path its environment names, and ``stream-od
publish`` signs with the private key at the path the compose trainer's environment names. The
worker scores a few hundred KDD records plus two broken ones; then every metric name the
dashboard and the rules query must be in its scrape, and /healthz and /readyz answer 200. Then
a second version is published unsigned (refused as ``unsigned``), signed with another key pair
(refused as ``bad_signature``; both counted in ``stream_od_model_refusals_total``), and signed
with the trainer's key (swapped in without a restart: ``stream_od_model_swaps_total``), and
SIGTERM stops the worker with exit code 0.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from stream_od.config import ENV_PREFIX
from stream_od.registry import keys
from tests.deploy import stack
from tests.worker_support import OUTCOMES, free_port
from tests.worker_support import http_get as get
from tests.worker_support import metric_total as sample_value

RECORDS = 300
BROKEN = [b"{not json", b"1,2,3"]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}


def train(kdd_train_path: Path, out: Path, n_train: int) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "stream_od.cli",
        "train",
        "--detector",
        "mahalanobis",
        "--data",
        str(kdd_train_path),
        "--n-train",
        str(n_train),
        "--out",
        str(out),
        "--quiet",
    ]
    run = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"stream-od train failed:\n{run.stdout}\n{run.stderr}"
    return out


@pytest.fixture(scope="module")
def trained_models(tmp_path_factory, kdd_train_path) -> tuple[Path, Path]:
    """Two versions: the one the worker starts with and the one it swaps to."""
    root = tmp_path_factory.mktemp("deploy-model")
    return (train(kdd_train_path, root / "v1", 20_000), train(kdd_train_path, root / "v2", 15_000))


def publish(artifact: Path, topic: str, bootstrap: str, key_env: dict[str, str]) -> dict:
    """``stream-od publish`` with the key settings ``key_env`` (none: unsigned)."""
    env = {**clean_env(), **key_env}
    cmd = [
        sys.executable,
        "-m",
        "stream_od.cli",
        "publish",
        "--artifact",
        str(artifact),
        "--topic",
        topic,
        "--bootstrap-servers",
        bootstrap,
    ]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"stream-od publish failed:\n{run.stdout}\n{run.stderr}"
    return json.loads(run.stdout)


def labelled_value(text: str, name: str, **labels: str) -> float:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(w in line for w in want)
    )


def kdd_lines(path: Path, n: int) -> list[bytes]:
    with gzip.open(path, "rb") as fh:
        return [line.rstrip(b"\n") for line in itertools.islice(fh, n)]


def key_settings(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("STREAM_OD_MODEL_") and "_KEY" in k}


@pytest.mark.slow
def test_dashboard_and_rules_match_a_live_scrape(
    kafka_bootstrap, new_topic, kdd_train_path, trained_models, tmp_path, worker_series
):
    input_topic = new_topic(partitions=2, prefix="deploy-in")
    alerts_topic = new_topic(prefix="deploy-alerts")
    dead_topic = new_topic(prefix="deploy-dead")
    # A key pair made for this test, standing in for ./secrets: each side's environment names
    # the file compose would mount for it.
    key_dir = tmp_path / "secrets"
    keys.generate(key_dir)
    services = stack.compose()["services"]
    compose_env = stack.compose_key_env(services["worker"], key_dir)
    trainer_keys = key_settings(stack.compose_key_env(services["trainer"], key_dir))
    assert set(trainer_keys) == {"STREAM_OD_MODEL_PRIVATE_KEY_FILE"}, trainer_keys
    assert set(key_settings(compose_env)) == {"STREAM_OD_MODEL_PUBLIC_KEY_FILE"}, compose_env
    other_dir = tmp_path / "other-secrets"
    keys.generate(other_dir)
    other_keys = {"STREAM_OD_MODEL_PRIVATE_KEY_FILE": str(other_dir / keys.PRIVATE_KEY_FILE)}
    # The models topic exactly as compose's kafka-setup creates it: the broker must accept the
    # settings, and the registry must work on such a topic.
    setup = "\n".join(services["kafka-setup"]["command"])
    models_name = compose_env["STREAM_OD_MODEL_TOPIC"]
    models_topic = new_topic(
        partitions=stack.created_topics(setup)[models_name],
        config=stack.created_topic_configs(setup)[models_name],
        prefix="deploy-models",
    )
    v1, v2 = trained_models
    first = publish(v1, models_topic, kafka_bootstrap, trainer_keys)
    assert first["signatures"] == ["ed25519"] and first["offset"] == 0
    port = free_port()
    env = {
        **clean_env(),
        **compose_env,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_INPUT_TOPIC": input_topic,
        "STREAM_OD_ALERTS_TOPIC": alerts_topic,
        "STREAM_OD_DEAD_LETTER_TOPIC": dead_topic,
        "STREAM_OD_GROUP_ID": f"deploy-{uuid.uuid4().hex[:8]}",
        "STREAM_OD_INSTANCE_ID": f"deploy-{uuid.uuid4().hex[:8]}",
        "STREAM_OD_MODEL_TOPIC": models_topic,
        "STREAM_OD_MODEL_POLL_INTERVAL_S": "0.5",
        "STREAM_OD_METRICS_HOST": "127.0.0.1",
        "STREAM_OD_METRICS_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "worker.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream_od.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def fail(why: str):
            pytest.fail(f"{why}\n--- worker log ---\n{log_path.read_text()[-4000:]}")

        deadline = time.monotonic() + 180
        while get(f"{base}/readyz")[0] != 200:
            if proc.poll() is not None:
                fail(f"the worker exited with {proc.returncode} before it was ready")
            if time.monotonic() > deadline:
                fail("/readyz did not answer 200 within 180 s")
            time.sleep(0.5)
        assert get(f"{base}/healthz")[0] == 200

        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        for i, value in enumerate(kdd_lines(kdd_train_path, RECORDS) + BROKEN):
            producer.produce(input_topic, value=value, key=str(i).encode())
        assert producer.flush(30) == 0

        deadline = time.monotonic() + 120
        while True:
            status, text = get(f"{base}/metrics")
            assert status == 200
            # every record's outcome counted (the worker counts outcomes last in a batch)
            if sum(sample_value(text, name) for name in OUTCOMES) >= RECORDS + len(BROKEN):
                break
            if proc.poll() is not None:
                fail(f"the worker exited with {proc.returncode} while scoring")
            if time.monotonic() > deadline:
                fail("the worker did not consume the records within 120 s")
            time.sleep(0.5)

        live = stack.exposition_series(text)
        assert sample_value(text, "stream_od_dead_letters_total") == len(BROKEN)
        assert sample_value(text, "stream_od_worker_up") == 1
        assert f'version="{first["version"]}"' in text, "not serving the published model"

        # The scrape offers every series the metrics module declares, and nothing is missing
        # that a panel or a rule queries.
        assert set(worker_series) <= set(live), sorted(set(worker_series) - set(live))
        known = set(live) | stack.PROMETHEUS_BUILTINS
        missing = [
            f"{where}: {name}"
            for where, expr in stack.dashboard_exprs() + stack.rule_exprs()
            for name in sorted(stack.promql_metric_names(expr))
            if name not in known
        ]
        assert not missing, "queried but not in the live scrape:\n" + "\n".join(missing)
        # Histograms scraped with samples, as histogram_quantile needs them.
        for name in (
            "stream_od_end_to_end_latency_seconds_bucket",
            "stream_od_batch_stage_seconds_bucket",
            "stream_od_batch_size_records_bucket",
        ):
            assert f"{name}{{" in text and sample_value(text, name) > 0, name

        # A second version, unsigned, then signed with a key the worker does not trust:
        # refused both times, and the worker keeps scoring with the first.
        second = publish(v2, models_topic, kafka_bootstrap, {})
        assert not second["signed"] and second["version"] != first["version"]
        forged = publish(v2, models_topic, kafka_bootstrap, other_keys)
        assert forged["signatures"] == ["ed25519"]
        for reason in ("unsigned", "bad_signature"):
            deadline = time.monotonic() + 60
            while (
                labelled_value(
                    get(f"{base}/metrics")[1], "stream_od_model_refusals_total", reason=reason
                )
                < 1
            ):
                if proc.poll() is not None or time.monotonic() > deadline:
                    fail(f"the model was not refused as {reason} (stream_od_model_refusals_total)")
                time.sleep(0.5)
        # The same version signed with the trainer's private key: taken into use at the next
        # batch, with no restart.
        publish(v2, models_topic, kafka_bootstrap, trainer_keys)
        deadline = time.monotonic() + 60
        for i in itertools.count():
            producer.produce(input_topic, value=kdd_lines(kdd_train_path, 1)[0], key=b"%d" % i)
            producer.flush(10)
            text = get(f"{base}/metrics")[1]
            if (
                sample_value(text, "stream_od_model_swaps_total") >= 1
                and f'version="{second["version"]}"' in text
            ):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                fail("the worker did not swap to the signed second version within 60 s")
            time.sleep(0.5)
        assert f'version="{first["version"]}"' not in text
        for reason in ("unsigned", "bad_signature"):
            assert labelled_value(text, "stream_od_model_refusals_total", reason=reason) == 1

        proc.send_signal(signal.SIGTERM)
        grace = float(compose_env.get("STREAM_OD_SHUTDOWN_GRACE_S", "30"))
        try:
            rc = proc.wait(timeout=grace + 15)
        except subprocess.TimeoutExpired:
            fail("the worker did not exit within shutdown_grace_s + 15 s after SIGTERM")
        if rc != 0:
            fail(f"SIGTERM: exit code {rc}, expected 0")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
