"""Fixtures for the stream worker's integration tests: a model, a sampled stream, topics."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import orjson
import pytest

from stream_od.artifact import Artifact
from tests.kafka_support import unique_name


def train_mahalanobis(data, n_train: int, out) -> tuple[Artifact, object]:
    """Train a Mahalanobis artifact into ``out``; returns it as loaded back, and its path."""
    from trainer.fit import TrainConfig, train

    art = train(
        TrainConfig(data=str(data), detector="mahalanobis", n_train=n_train), progress=False
    )
    path = art.save(out)
    return Artifact.load(path), path


@pytest.fixture(scope="session")
def mahalanobis_artifact(tmp_path_factory, kdd_train_path):
    """A quickly trained Mahalanobis artifact (same format and API as the neural detectors)."""
    return train_mahalanobis(
        kdd_train_path, 50_000, tmp_path_factory.mktemp("artifact") / "mahalanobis"
    )


@pytest.fixture(scope="session")
def kdd_stream(kdd_train_path):
    """20,000 JSON records, 5 % attacks, as ``stream-od replay`` would send them."""
    from trainer.replay import sample_stream

    return sample_stream(str(kdd_train_path), count=20_000, attack_ratio=5.0, seed=7, fmt="json")


def offline_scores(artifact: Artifact, values: list[bytes]) -> np.ndarray:
    """What the artifact says about each record, computed without Kafka."""
    X = np.array(
        [[orjson.loads(v)[n] for n in artifact.feature_names] for v in values], dtype=np.float64
    )
    return artifact.score(X)


@pytest.fixture
def worker_topics(new_topic):
    """Input (3 partitions), alerts, dead-letter and scores topics, uniquely named."""
    return {
        "STREAM_OD_INPUT_TOPIC": new_topic(partitions=3, prefix="in"),
        "STREAM_OD_ALERTS_TOPIC": new_topic(prefix="alerts"),
        "STREAM_OD_DEAD_LETTER_TOPIC": new_topic(prefix="dlq"),
        "STREAM_OD_SCORES_TOPIC": new_topic(prefix="scores"),
        "STREAM_OD_GROUP_ID": unique_name("group"),
        "STREAM_OD_INSTANCE_ID": uuid.uuid4().hex[:8],
    }


ZEEK_DIR = Path(__file__).parents[2].parent / "shared" / "data" / "zeek"
ZEEK_TRAIN = ZEEK_DIR / "008-zeek-mixed.conn.log.labeled"
ZEEK_REPLAY = ZEEK_DIR / "010-zeek-mixed.conn.log.labeled"


@pytest.fixture(scope="session")
def zeek_replay_path() -> Path:
    """A later day of the training host's labelled Zeek conn log (skips when absent)."""
    if not ZEEK_REPLAY.is_file():
        pytest.skip(f"labelled Zeek conn log not found at {ZEEK_REPLAY}")
    return ZEEK_REPLAY


@pytest.fixture(scope="session")
def zeek_mahalanobis_artifact(tmp_path_factory) -> tuple[Artifact, Path]:
    """A Mahalanobis artifact trained on one day of a labelled Zeek conn log, the way
    ``stream-od train --schema zeek-conn --target-alert-rate 0.01`` trains it (3 s)."""
    from trainer.readers import read_logs
    from trainer.site import SiteConfig, train_site

    if not ZEEK_TRAIN.is_file():
        pytest.skip(f"labelled Zeek conn log not found at {ZEEK_TRAIN}")
    cfg = SiteConfig(
        data=[str(ZEEK_TRAIN)], schema="zeek-conn", detector="mahalanobis", target_alert_rate=0.01
    )
    art = train_site(cfg, read_logs([ZEEK_TRAIN]).records, progress=False, log=lambda _: None)
    path = art.save(tmp_path_factory.mktemp("artifact") / "zeek-mahalanobis")
    return Artifact.load(path), path


@pytest.fixture(scope="session")
def zeek_windows_artifact(tmp_path_factory) -> tuple[Artifact, Path]:
    """Mahalanobis on zeek-conn-windows, trained on one day as ``stream-od train`` does."""
    from trainer.readers import read_logs
    from trainer.site import SiteConfig, train_site

    if not ZEEK_TRAIN.is_file():
        pytest.skip(f"labelled Zeek conn log not found at {ZEEK_TRAIN}")
    cfg = SiteConfig(
        data=[str(ZEEK_TRAIN)],
        schema="zeek-conn-windows",
        detector="mahalanobis",
        target_alert_rate=0.01,
    )
    art = train_site(cfg, read_logs([ZEEK_TRAIN]).records, progress=False, log=lambda _: None)
    path = art.save(tmp_path_factory.mktemp("artifact") / "zeek-windows")
    return Artifact.load(path), path
