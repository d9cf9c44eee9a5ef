"""Scoring placement: numpy on the CPU unless a GPU is there (or asked for and missing)."""

from __future__ import annotations

import os
import sys
import types

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
    with pytest.raises(
        ConfigError, match=r"scoring_device=gpu, but Keras' backend \(tensorflow\) sees no GPU"
    ):
        device.place(vaegmm, "gpu")


def test_a_gpu_scores_through_keras_and_agrees_with_numpy(vaegmm, monkeypatch):
    X = np.random.default_rng(1).normal(size=(300, 4)) * 2
    on_cpu = vaegmm.score(X)
    monkeypatch.setattr(device, "visible_gpus", lambda: ["/physical_device:GPU:0"])
    try:
        where = device.place(vaegmm, "auto" if device.nvidia_driver_loaded() else "gpu")
        assert where == device.Placement("keras-tensorflow", "/physical_device:GPU:0")
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


def test_on_jax_the_gpus_are_jax_s_cuda_devices(monkeypatch):
    """KERAS_BACKEND=jax: the GPU is asked of JAX (its CUDA devices, not its CPU)."""
    cpu = types.SimpleNamespace(platform="cpu", id=0, device_kind="cpu")
    gpu = types.SimpleNamespace(platform="gpu", id=0, device_kind="NVIDIA H200")
    monkeypatch.setattr(device, "keras_backend", lambda: "jax")
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(devices=lambda: [gpu]))
    assert device.visible_gpus() == ["cuda:0 (NVIDIA H200)"]
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(devices=lambda: [cpu]))
    assert device.visible_gpus() == []


def test_without_keras_there_is_no_gpu_to_ask(vaegmm, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # import keras raises ImportError
    assert device.keras_backend() is None
    assert device.visible_gpus() == []
    with pytest.raises(ConfigError, match=r"gpu, but no Keras backend is installed .*stream-od"):
        device.place(vaegmm, "gpu")


def test_torch_is_not_taken_for_the_gpu(vaegmm, monkeypatch):
    """Keras' torch backend scored up to 1e-4 off numpy on an H200: asked for the GPU through
    it, the worker refuses with what to set; on auto it scores on the CPU."""
    monkeypatch.setattr(device, "keras_backend", lambda: "torch")
    monkeypatch.setattr(device, "nvidia_driver_loaded", lambda: True)
    assert device.visible_gpus() == []
    with pytest.raises(ConfigError, match=r"Keras runs on torch.*KERAS_BACKEND"):
        device.place(vaegmm, "gpu")
    assert str(device.place(vaegmm, "auto")) == "numpy on cpu"


def test_probing_for_a_gpu_asks_the_backends_to_share_it(vaegmm, monkeypatch):
    """Before the backend is asked for its GPUs, it is told to take memory as it needs it
    (several workers per GPU host); an operator's own value stands."""
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "")  # restored after the test
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE")
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")
    seen = {}

    def gpus():
        seen.update(os.environ)
        return []

    monkeypatch.setattr(device, "visible_gpus", gpus)
    monkeypatch.setattr(device, "nvidia_driver_loaded", lambda: True)
    assert str(device.place(vaegmm, "auto")) == "numpy on cpu"
    assert seen["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert seen["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"


def test_the_cpu_setting_leaves_the_environment_alone(vaegmm, monkeypatch):
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "")
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE")
    device.place(vaegmm, "cpu")
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in os.environ


def test_blas_sums_are_placed_and_said(vaegmm):
    try:
        assert device.place(vaegmm, "cpu", "blas") == device.Placement("numpy-blas", "cpu")
        assert vaegmm._sums == "blas"
    finally:
        assert str(device.place(vaegmm, "cpu")) == "numpy on cpu"
    assert vaegmm._sums == "exact"
    with pytest.raises(ConfigError, match="scoring_sums must be one of"):
        device.place(vaegmm, "cpu", "pairwise")


def test_repeated_rows_are_scored_once_unless_asked(vaegmm):
    assert vaegmm._repeated == "once"
    try:
        assert device.place(vaegmm, "cpu", "exact", "each") == device.Placement("numpy", "cpu")
        assert vaegmm._repeated == "each"
    finally:
        device.place(vaegmm, "cpu")
    assert vaegmm._repeated == "once"
    with pytest.raises(ConfigError, match="scoring_repeated_rows must be one of"):
        device.place(vaegmm, "cpu", "exact", "twice")
