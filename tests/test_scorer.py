"""stream_od.scorer: what the worker derives from a model, and which models it refuses."""

from __future__ import annotations

import pytest

from stream_od.config import load_settings
from stream_od.scorer import Scorer, keep_windows
from tests.test_worker import FakeModel


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


def test_a_model_swap_keeps_the_windows_when_their_definition_is_the_same():
    from dataclasses import replace

    from stream_od.schema import load_schema

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
    assert keep_windows(current, same)
    assert same.decoder.window_streams is current.decoder.window_streams
    assert not keep_windows(current, other)
    assert other.decoder.window_streams is not current.decoder.window_streams


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
