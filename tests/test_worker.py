"""The worker's pure logic, without a broker (its Kafka behaviour is in tests/integration)."""

from __future__ import annotations

import numpy as np
import pytest

from stream_od.config import load_settings
from stream_od.errors import FatalWorkerError
from stream_od.schema import FeatureSchema
from stream_od.worker import Worker


class FakeModel:
    version = "fake-1"
    detector_kind = "mahalanobis"
    schema = FeatureSchema.numeric(("a", "b"))
    feature_names = ("a", "b")
    threshold = 4.0
    metrics: dict = {}

    def score_and_contributions(self, X, check_finite=True):
        with np.errstate(over="ignore"):
            scores = X.sum(axis=1)  # a + b overflows for a, b near 1e308, as a model's energy can
        assert check_finite is False  # the worker sets such rows apart itself
        return scores, np.abs(X)

    def place_scoring(self, device, sums="exact", repeated="once"):
        from stream_od.detector.device import Placement

        return Placement("numpy", "cpu")


def test_a_broken_upstream_stops_the_worker_instead_of_draining_it():
    worker = Worker(
        load_settings(
            max_dead_letter_ratio=0.5, dead_letter_window=100, bootstrap_servers="127.0.0.1:1"
        ),
        FakeModel(),
    )
    worker._check_invalid_ratio(60, 10)  # 10 / 60 invalid: fine, window not full yet
    worker._check_invalid_ratio(60, 20)  # 30 / 120: fine
    with pytest.raises(FatalWorkerError, match="max_dead_letter_ratio"):
        worker._check_invalid_ratio(100, 90)  # 90 of the last 100 records: stop
