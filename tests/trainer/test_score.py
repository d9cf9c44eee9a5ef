"""``stream-od score``'s scoring of records (trainer/score.py), as the worker scores them: a
record whose score is not finite is a dead letter with its reason, not a stop (pure logic)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from stream_od.artifact import Artifact
from stream_od.detector import Mahalanobis
from stream_od.features import Standardizer
from stream_od.records import NON_FINITE_SCORE
from stream_od.schema import FeatureSchema
from trainer.score import score_values


@pytest.fixture
def artifact() -> Artifact:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)) * [1, 100, 0.01] + [0, 50, 1]
    st = Standardizer().fit(X)
    det = Mahalanobis().fit(st.transform(X)).infer_threshold(st.transform(X), 99)
    return Artifact(detector=det, standardizer=st, schema=FeatureSchema.numeric(("a", "b", "c")))


def test_a_value_far_beyond_the_training_range_is_a_dead_letter_and_the_rest_is_scored(artifact):
    """1e200 is a finite number, so the decoder takes it; squared in the model's distance it
    overflows.  The whole batch used to raise FloatingPointError (in the worker: the partition
    stopped, the same batch failing at every restart)."""
    values = [
        orjson.dumps({"a": 0.1, "b": 50.0, "c": 1.0}),
        orjson.dumps({"a": 0.1, "b": 1e200, "c": 1.0}),
        orjson.dumps({"a": 9.0, "b": 50.0, "c": 1.0}),
    ]
    out = list(score_values(artifact, values))
    assert [r["index"] for r in out] == [0, 1, 2]
    assert out[1]["dead_letter"] == NON_FINITE_SCORE and "training" in out[1]["detail"]
    assert out[0]["alert"] is False and out[2]["alert"] is True
    X = np.array([[0.1, 50.0, 1.0], [9.0, 50.0, 1.0]])
    assert [out[0]["score"], out[2]["score"]] == artifact.score(X).tolist()  # unchanged bits


def test_the_detector_sets_a_non_finite_row_apart_only_when_asked(artifact):
    X = np.array([[0.1, 50.0, 1.0], [0.1, 1e200, 1.0]])
    with pytest.raises(FloatingPointError, match="non-finite"):
        artifact.score_and_contributions(X)
    scores, contributions = artifact.score_and_contributions(X, check_finite=False)
    assert np.isfinite(scores[0]) and not np.isfinite(scores[1])
    assert contributions.shape == (2, 3) and np.isfinite(contributions[0]).all()
