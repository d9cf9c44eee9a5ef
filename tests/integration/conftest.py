"""Fixtures for the stream worker's integration tests: a model, a sampled stream, topics."""

from __future__ import annotations

import uuid

import numpy as np
import orjson
import pytest

from stream_od.artifact import Artifact
from tests.kafka_support import unique_name


def train_mahalanobis(data, n_train: int, out) -> tuple[Artifact, object]:
    """Train a Mahalanobis artifact into ``out``; returns it as loaded back, and its path."""
    from trainer.fit import TrainConfig, train

    art = train(TrainConfig(data=str(data), detector="mahalanobis", n_train=n_train),
                progress=False)
    path = art.save(out)
    return Artifact.load(path), path


@pytest.fixture(scope="session")
def mahalanobis_artifact(tmp_path_factory, kdd_train_path):
    """A quickly trained Mahalanobis artifact (same format and API as the neural detectors)."""
    return train_mahalanobis(kdd_train_path, 50_000,
                             tmp_path_factory.mktemp("artifact") / "mahalanobis")


@pytest.fixture(scope="session")
def kdd_stream(kdd_train_path):
    """20,000 JSON records, 5 % attacks, as ``stream-od replay`` would send them."""
    from trainer.replay import sample_stream

    return sample_stream(str(kdd_train_path), count=20_000, attack_ratio=5.0, seed=7, fmt="json")


def offline_scores(artifact: Artifact, values: list[bytes]) -> np.ndarray:
    """What the artifact says about each record, computed without Kafka."""
    X = np.array([[orjson.loads(v)[n] for n in artifact.feature_names] for v in values],
                 dtype=np.float64)
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
