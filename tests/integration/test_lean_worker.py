"""The worker alone: ``pip install .`` in a fresh virtual environment brings no TensorFlow,
pandas, scikit-learn or matplotlib, and that worker serves a VAEGMM artifact trained with the
trainer (``stream-od[train]``), scoring exactly what offline scoring says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stream_od.artifact import Artifact
from tests.integration.conftest import offline_scores
from tests.integration.test_worker_stream import by_seq
from tests.worker_support import WorkerProcess, metric_values
from trainer.replay import Encoded, produce

REPO = Path(__file__).parents[2]
TRAINING_STACK = ("tensorflow", "keras", "pandas", "scikit-learn", "matplotlib", "h5py", "tqdm")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lean_python(tmp_path_factory) -> Path:
    """A fresh virtual environment with ``pip install <this checkout>`` and nothing else."""
    venv = tmp_path_factory.mktemp("lean") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return python


@pytest.fixture(scope="module")
def vaegmm_artifact(tmp_path_factory, kdd_train_path) -> tuple[Artifact, Path]:
    from trainer.fit import TrainConfig, train

    art = train(
        TrainConfig(data=str(kdd_train_path), detector="vaegmm", n_train=20_000, epochs=2),
        progress=False,
    )
    path = art.save(tmp_path_factory.mktemp("artifact") / "vaegmm")
    return Artifact.load(path), path


def test_pip_install_is_the_worker_without_the_training_stack(lean_python):
    listed = subprocess.run(
        [str(lean_python), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "stream-od" in installed and "confluent-kafka" in installed
    assert not installed & set(TRAINING_STACK), sorted(installed & set(TRAINING_STACK))


def test_the_training_commands_say_what_to_install(lean_python, tmp_path):
    done = subprocess.run(
        [str(lean_python), "-m", "stream_od.cli", "train", "--data", "x.csv", "--out", "o"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'stream-od[train]'" in done.stderr


def test_the_lean_worker_serves_a_vaegmm_with_the_offline_scores(
    lean_python, vaegmm_artifact, kafka_bootstrap, worker_topics, kdd_stream, read_topic, tmp_path
):
    artifact, path = vaegmm_artifact
    env = {
        **worker_topics,
        "STREAM_OD_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_OD_ARTIFACT_PATH": str(path),
        "STREAM_OD_MAX_BATCH_RECORDS": "500",
    }
    n = 5_000
    with WorkerProcess(env, tmp_path / "worker.log", python=lean_python).start() as worker:
        first = Encoded(values=kdd_stream.values[:n], labels=kdd_stream.labels[:n])
        produce(first, topic=env["STREAM_OD_INPUT_TOPIC"], bootstrap_servers=kafka_bootstrap)
        text = worker.wait_for("stream_od_records_scored_total", n)
        assert worker.terminate() == 0, worker.log()
        log = worker.log()
    assert "scoring with numpy on cpu" in log
    assert metric_values(text, "stream_od_scoring_info") == {'{backend="numpy",device="cpu"}': 1.0}
    scores = by_seq(read_topic(env["STREAM_OD_SCORES_TOPIC"]))
    assert sorted(scores) == list(range(n))
    expected = offline_scores(artifact, first.values)
    np.testing.assert_array_equal([scores[i]["score"] for i in range(n)], expected)
