"""The dashboard and the alert rules against a real worker's /metrics.

A real ``stream-od worker`` subprocess on the local broker, configured with the environment the
compose file gives its workers (only the broker address, topics, group, model path and port
replaced for the test), scores a few hundred KDD records plus two broken ones; then every
metric name the dashboard and the rules query must be in its scrape, /healthz and /readyz
answer 200, and SIGTERM stops it with exit code 0.
"""

from __future__ import annotations

import gzip
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from stream_od.config import ENV_PREFIX
from tests.deploy import stack

RECORDS = 300
BROKEN = [b"{not json", b"1,2,3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def sample_value(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory, kdd_train_path) -> Path:
    out = tmp_path_factory.mktemp("deploy-model") / "model"
    cmd = [sys.executable, "-m", "stream_od.cli", "train", "--detector", "mahalanobis",
           "--data", str(kdd_train_path), "--n-train", "20000", "--out", str(out), "--quiet"]
    run = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"stream-od train failed:\n{run.stdout}\n{run.stderr}"
    return out


def kdd_lines(path: Path, n: int) -> list[bytes]:
    with gzip.open(path, "rb") as fh:
        return [line.rstrip(b"\n") for line in itertools.islice(fh, n)]


@pytest.mark.slow
def test_dashboard_and_rules_match_a_live_scrape(kafka_bootstrap, new_topic, kdd_train_path,
                                                  trained_model, tmp_path, worker_series):
    input_topic = new_topic(partitions=2, prefix="deploy-in")
    alerts_topic = new_topic(prefix="deploy-alerts")
    dead_topic = new_topic(prefix="deploy-dead")
    port = free_port()
    compose_env = stack.env_mapping(stack.compose()["services"]["worker"]["environment"])
    env = {**clean_env(), **compose_env,
           "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "STREAM_OD_INPUT_TOPIC": input_topic,
           "STREAM_OD_ALERTS_TOPIC": alerts_topic,
           "STREAM_OD_DEAD_LETTER_TOPIC": dead_topic,
           "STREAM_OD_GROUP_ID": f"deploy-{uuid.uuid4().hex[:8]}",
           "STREAM_OD_INSTANCE_ID": f"deploy-{uuid.uuid4().hex[:8]}",
           "STREAM_OD_ARTIFACT_PATH": str(trained_model),
           "STREAM_OD_METRICS_HOST": "127.0.0.1",
           "STREAM_OD_METRICS_PORT": str(port),
           "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "worker.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "stream_od.cli", "worker"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
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
            if sample_value(text, "stream_od_records_consumed_total") >= RECORDS + len(BROKEN) \
                    and sample_value(text, "stream_od_batches_total") >= 1:
                break
            if proc.poll() is not None:
                fail(f"the worker exited with {proc.returncode} while scoring")
            if time.monotonic() > deadline:
                fail("the worker did not consume the records within 120 s")
            time.sleep(0.5)

        live = stack.exposition_series(text)
        assert sample_value(text, "stream_od_dead_letters_total") == len(BROKEN)
        assert sample_value(text, "stream_od_worker_up") == 1
        assert 'stream_od_model_info{' in text and "version=" in text

        # The scrape offers every series the metrics module declares, and nothing is missing
        # that a panel or a rule queries.
        assert set(worker_series) <= set(live), sorted(set(worker_series) - set(live))
        known = set(live) | stack.PROMETHEUS_BUILTINS
        missing = [f"{where}: {name}"
                   for where, expr in stack.dashboard_exprs() + stack.rule_exprs()
                   for name in sorted(stack.promql_metric_names(expr)) if name not in known]
        assert not missing, "queried but not in the live scrape:\n" + "\n".join(missing)
        # Histograms scraped with samples, as histogram_quantile needs them.
        for name in ("stream_od_end_to_end_latency_seconds_bucket",
                     "stream_od_batch_stage_seconds_bucket", "stream_od_batch_size_records_bucket"):
            assert f"{name}{{" in text and sample_value(text, name) > 0, name

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
