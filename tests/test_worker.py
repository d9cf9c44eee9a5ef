"""The worker's pure logic, without a broker (its Kafka behaviour is in tests/integration)."""

from __future__ import annotations

import numpy as np
import pytest

from stream_od.config import load_settings
from stream_od.errors import FatalWorkerError
from stream_od.schema import FeatureSchema
from stream_od.worker import Scorer, Worker, _first_offsets, _next_offsets


class FakeMessage:
    def __init__(self, topic, partition, offset):
        self._t, self._p, self._o = topic, partition, offset

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o


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

    def place_scoring(self, device, sums="exact"):
        from stream_od.detector.device import Placement

        return Placement("numpy", "cpu")


def test_offsets_to_commit_are_one_past_the_last_record_per_partition():
    msgs = [
        FakeMessage("in", 0, 5),
        FakeMessage("in", 1, 9),
        FakeMessage("in", 0, 6),
        FakeMessage("in", 1, 10),
        FakeMessage("in", 0, 7),
    ]
    assert sorted((tp.partition, tp.offset) for tp in _next_offsets(msgs)) == [(0, 8), (1, 11)]
    assert sorted((tp.partition, tp.offset) for tp in _first_offsets(msgs)) == [(0, 5), (1, 9)]


def test_severity_scale_falls_back_to_the_threshold_magnitude():
    settings = load_settings()
    assert Scorer.build(FakeModel(), settings).policy.score_scale == 4.0
    model = FakeModel()
    model.metrics = {"score_scale": 0.5}
    assert Scorer.build(model, settings).policy.score_scale == 0.5


def test_a_schema_the_worker_cannot_serve_is_refused():
    model = FakeModel()  # features outside the KDD layout: no CSV input possible
    with pytest.raises(ValueError, match="no column"):
        Scorer.build(model, load_settings(input_format="csv"))


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


def test_a_model_swap_keeps_the_windows_when_their_definition_is_the_same():
    from dataclasses import replace

    from stream_od.schema import load_schema
    from stream_od.worker import _keep_windows

    base = load_schema("zeek-conn-windows")
    schema = base.with_vocabularies({f.name: () for f in base.fields if f.kind == "categorical"})
    settings = load_settings()

    def scorer(s):
        model = FakeModel()
        model.schema, model.feature_names = s, s.feature_names
        return Scorer.build(model, settings)

    current, same, other = (
        scorer(schema),
        scorer(schema),
        scorer(replace(schema, windows=replace(schema.windows, time_s=5.0))),
    )
    assert _keep_windows(current, same)
    assert same.decoder.window_streams is current.decoder.window_streams
    assert not _keep_windows(current, other)
    assert other.decoder.window_streams is not current.decoder.window_streams


def test_a_windows_stage_passes_headers_on_unless_they_are_too_large():
    from stream_od.worker import HEADERS_DROPPED, _passed_headers

    small = [("label", b"Malicious"), ("seq", b"12")]
    assert _passed_headers(small) == small and _passed_headers(None) is None
    big = [("trace", b"x" * 20_000), ("seq", b"12")]
    assert _passed_headers(big) == [(HEADERS_DROPPED, b"2 headers, 20010 bytes")]


def test_the_expected_alert_rate_comes_from_the_artifact():
    from stream_od.worker import expected_alert_rate

    assert expected_alert_rate({"holdout": {"target_alert_rate": 0.01}}) == 0.01
    assert expected_alert_rate({"threshold_alert_rate": 0.02}) == 0.02
    assert expected_alert_rate({"test_batch": {"flag_rate": 0.1}}) is None  # KDD protocol


def test_a_sensor_model_trained_before_select_is_served_with_a_warning(caplog):
    """Its schema, covered by the artifact's signature, stays as trained; the operator is told
    that other kinds of record will be scored, and how to change that."""
    from dataclasses import replace

    from stream_od.schema import load_schema

    fitted = load_schema("suricata-flow")
    fitted = fitted.with_vocabularies({f.name: () for f in fitted.fields if not f.fitted})

    def warnings_for(schema) -> list[str]:
        model = FakeModel()
        model.schema, model.feature_names = schema, schema.feature_names
        caplog.clear()
        Scorer.build(model, load_settings())
        return [r.getMessage() for r in caplog.records if "no [select]" in r.getMessage()]

    (said,) = warnings_for(replace(fitted, select=None))
    assert "event_type not in ['flow']" in said and "retrain" in said
    assert warnings_for(fitted) == []
    assert warnings_for(FakeModel.schema) == []  # not a built-in sensor schema
