"""Shared fixtures.  Kafka tests run against the real local broker (deploy/kafka/kafka.sh).

A session-scoped broker: reuse one already listening on STREAM_OD_TEST_BOOTSTRAP
(default 127.0.0.1:9092), else start the project's own and stop it at the end.  Every test that
uses it is marked ``kafka`` automatically, so ``-m "not kafka"`` is a pure-logic run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import kafka_support
from tests.worker_support import kill_leftover_workers

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
KAFKA_FIXTURES = {"kafka_bootstrap", "new_topic"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


def _broker_up(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=3)
        return True
    except Exception:
        return False


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test():
    """A test that fails between starting a worker and killing it leaves no worker behind."""
    yield
    kill_leftover_workers()


@pytest.fixture(scope="session")
def kafka_bootstrap():
    bootstrap = os.environ.get("STREAM_OD_TEST_BOOTSTRAP", "127.0.0.1:9092")
    if _broker_up(bootstrap):
        yield bootstrap
        return
    script = REPO / "deploy" / "kafka" / "kafka.sh"
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run([str(script), "up"], check=True, env=env)
    try:
        yield bootstrap
    finally:
        subprocess.run([str(script), "down"], check=False, env=env)


@pytest.fixture
def new_topic(kafka_bootstrap):
    """Factory: ``new_topic(partitions=1, config=None, prefix="t")`` creates a uniquely named
    topic."""
    created: list[str] = []

    def make(partitions: int = 1, config: dict | None = None, prefix: str = "t") -> str:
        name = kafka_support.create_topic(
            kafka_bootstrap, kafka_support.unique_name(prefix), partitions, config
        )
        created.append(name)
        return name

    yield make
    kafka_support.delete_topics(kafka_bootstrap, created)


@pytest.fixture
def read_topic(kafka_bootstrap):
    """``read_topic(topic, isolation="read_committed")`` -> every record up to the current end."""

    def read(topic: str, isolation: str = "read_committed", timeout: float = 60.0):
        return kafka_support.read_to_end(
            kafka_bootstrap, topic, isolation=isolation, timeout=timeout
        )

    return read


@pytest.fixture(scope="session")
def kdd_train_path() -> Path:
    path = SHARED_DATA / "kddcup.data_10_percent.gz"
    if not path.exists():
        pytest.skip(f"KDD data not found at {path}")
    return path


@pytest.fixture(scope="session")
def kdd_test_path() -> Path:
    path = SHARED_DATA / "corrected.gz"
    if not path.exists():
        pytest.skip(f"KDD test data not found at {path}")
    return path
