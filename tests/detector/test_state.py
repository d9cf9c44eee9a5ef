"""The detector state protocol: ``__getstate__`` / ``__setstate__`` carry a fitted detector
as plain data (parameters, fitted scalars, arrays, named files), which is what the artifact
writes, and what ``copy`` and ``pickle`` use."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from stream_od.detector import AEGMM, VAEGMM, DetectorState, Mahalanobis, restore
from stream_od.detector.base import NotFittedError


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(600, 5)), rng.uniform(-5, 5, size=(50, 5))


@pytest.fixture(scope="module")
def mahalanobis():
    X, _ = _data()
    return Mahalanobis(jitter=1e-5).fit(X).infer_threshold(X, 97)


@pytest.fixture(scope="module", params=["vaegmm", "aegmm"])
def neural(request):
    X, _ = _data()
    cls = VAEGMM if request.param == "vaegmm" else AEGMM
    return cls(epochs=2, batch_size=128, seed=1).fit(X).infer_threshold(X, 97)


def test_an_unfitted_detector_is_its_parameters():
    state = Mahalanobis(jitter=1e-3).__getstate__()
    assert state == DetectorState("mahalanobis", {"jitter": 1e-3})
    with pytest.raises(NotFittedError):
        restore(state).score(np.zeros((1, 5)))


def test_mahalanobis_state_is_what_it_fitted(mahalanobis):
    state = mahalanobis.__getstate__()
    assert state.params == {"jitter": 1e-5} and state.files == {}
    assert set(state.arrays) == {"mu_", "cov_"}
    assert state.fitted["n_features_in_"] == 5
    assert state.fitted["threshold_"] == mahalanobis.threshold_


@pytest.mark.parametrize("clone", [restore, copy.deepcopy, lambda d: pickle.loads(pickle.dumps(d))])
def test_restored_detectors_score_bit_identically(mahalanobis, clone):
    X, outliers = _data(1)
    source = mahalanobis.__getstate__() if clone is restore else mahalanobis
    back = clone(source)
    assert back is not mahalanobis and back.threshold_ == mahalanobis.threshold_
    assert np.array_equal(back.score(np.r_[X, outliers]), mahalanobis.score(np.r_[X, outliers]))


def test_a_neural_state_carries_its_networks_as_arrays(neural):
    state = neural.__getstate__()
    assert state.files == {}
    assert {"phi_", "mu_", "cov_"} <= set(state.arrays)
    layers = {k for k in state.arrays if k.startswith("net.")}
    assert len(layers) == len(neural.model_.get_weights()), "every Keras weight, once"
    assert state.fitted["n_epochs_"] == 2


@pytest.mark.parametrize("clone", [restore, copy.deepcopy, lambda d: pickle.loads(pickle.dumps(d))])
def test_restored_neural_detectors_score_bit_identically(neural, clone):
    X, outliers = _data(2)
    back = clone(neural.__getstate__() if clone is restore else neural)
    assert back.networks_ is not neural.networks_ and back._keras is None
    assert np.array_equal(back.score(np.r_[X, outliers]), neural.score(np.r_[X, outliers]))
    assert np.array_equal(back.contributions(outliers), neural.contributions(outliers))


def test_a_state_restores_only_its_own_kind(mahalanobis):
    with pytest.raises(ValueError, match="cannot restore"):
        Mahalanobis().__setstate__(DetectorState("vaegmm", {}))
    with pytest.raises(ValueError, match="unknown mahalanobis parameters"):
        Mahalanobis().__setstate__(DetectorState("mahalanobis", {"epochs": 3}))


def test_arrays_of_the_wrong_shape_are_refused(mahalanobis):
    state = mahalanobis.__getstate__()
    bad = DetectorState(
        state.kind, state.params, state.fitted, {**state.arrays, "mu_": np.zeros(3)}
    )
    with pytest.raises(ValueError, match="do not match n_features_in_"):
        restore(bad)
