"""Scoring placement: numpy on the CPU unless a GPU is there (or asked for and missing)."""

from __future__ import annotations

import numpy as np
import pytest

from stream_od.detector import VAEGMM, Mahalanobis, device
from stream_od.errors import ConfigError


@pytest.fixture(scope="module")
def vaegmm():
    X = np.random.default_rng(0).normal(size=(600, 4))
    return VAEGMM(epochs=1, batch_size=128, seed=0).fit(X).infer_threshold(X, 95)


def test_cpu_scores_with_numpy(vaegmm):
    assert device.place(vaegmm, "cpu") == device.Placement("numpy", "cpu")
    assert vaegmm.scoring_backend == "numpy"


def test_auto_without_the_nvidia_driver_never_asks_tensorflow(vaegmm, monkeypatch):
    monkeypatch.setattr(device, "nvidia_driver_loaded", lambda: False)
    monkeypatch.setattr(device, "visible_gpus", lambda: pytest.fail("TensorFlow was asked"))
    assert str(device.place(vaegmm, "auto")) == "numpy on cpu"


def test_gpu_without_one_is_refused_with_what_to_do(vaegmm, monkeypatch):
    monkeypatch.setattr(device, "visible_gpus", lambda: [])
    with pytest.raises(ConfigError, match="scoring_device=gpu, but TensorFlow sees no GPU"):
        device.place(vaegmm, "gpu")


def test_a_gpu_scores_through_keras_and_agrees_with_numpy(vaegmm, monkeypatch):
    X = np.random.default_rng(1).normal(size=(300, 4)) * 2
    on_cpu = vaegmm.score(X)
    monkeypatch.setattr(device, "visible_gpus", lambda: ["/physical_device:GPU:0"])
    try:
        where = device.place(vaegmm, "auto" if device.nvidia_driver_loaded() else "gpu")
        assert where == device.Placement("keras", "/physical_device:GPU:0")
        assert vaegmm.scoring_backend == "keras"
        np.testing.assert_allclose(vaegmm.score(X), on_cpu, rtol=1e-3)  # float32, two orders
    finally:
        device.place(vaegmm, "cpu")
    assert vaegmm.scoring_backend == "numpy"


def test_mahalanobis_scores_with_numpy_whatever_the_setting(monkeypatch):
    monkeypatch.setattr(device, "visible_gpus", lambda: pytest.fail("TensorFlow was asked"))
    X = np.random.default_rng(2).normal(size=(50, 3))
    assert str(device.place(Mahalanobis().fit(X), "gpu")) == "numpy on cpu"


def test_an_unknown_setting_is_refused():
    with pytest.raises(ConfigError, match="scoring_device must be one of"):
        device.place(Mahalanobis(), "tpu")
