"""Fixtures for the deploy tests: what the code defines, to compare the stack against."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stream_od.config import ENV_PREFIX, WorkerSettings
from stream_od.metrics import WorkerMetrics
from stream_od.registry import keys
from tests.deploy import stack


@pytest.fixture(scope="session")
def setting_env_names() -> frozenset[str]:
    """``STREAM_OD_*`` names of every WorkerSettings field."""
    return frozenset(ENV_PREFIX + name.upper() for name in WorkerSettings.model_fields)


@pytest.fixture(scope="session")
def worker_exposition() -> str:
    """The worker's /metrics text as its metrics module renders it (no samples recorded)."""
    return WorkerMetrics().render().decode()


@pytest.fixture(scope="session")
def worker_series(worker_exposition) -> dict[str, str]:
    return stack.exposition_series(worker_exposition)


@pytest.fixture(scope="session")
def worker_label_names() -> frozenset[str]:
    """Every label name a worker metric can carry, plus the ones Prometheus adds."""
    metrics = WorkerMetrics()
    metrics.set_model("v1", "mahalanobis", 1.0)  # the Info's label names appear once it is set
    names = {"job", "instance", "le"}
    for line in metrics.render().decode().splitlines():
        if not line.startswith("#") and "{" in line:
            names.update(re.findall(r'([A-Za-z_]\w*)="', line[line.index("{") :]))
    for value in vars(metrics).values():  # labelled metrics with no child yet
        names.update(getattr(value, "_labelnames", ()))
    return frozenset(names)


@pytest.fixture(scope="session")
def model_keys(tmp_path_factory) -> Path:
    """A directory holding a real key pair from ``stream-od keygen``'s code, under the file
    names the stack mounts (``model-signing.key``, ``model-signing.pub``)."""
    out = tmp_path_factory.mktemp("model-keys") / "secrets"
    keys.generate(out)
    return out
