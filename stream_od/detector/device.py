"""Where a detector scores: numpy on the CPU, or Keras' compiled function on a GPU.

``STREAM_OD_SCORING_DEVICE`` is ``auto`` (a GPU when Keras is installed and its backend sees
one, the CPU otherwise), ``cpu`` or ``gpu`` (refused at start when there is none, rather than
scoring somewhere else than the operator asked).  The GPU is asked of the backend Keras runs on
(``KERAS_BACKEND``): TensorFlow, as ``stream-od[gpu]`` installs it, or JAX where a machine has
JAX with CUDA already (the same compiled forward pass, in float64: on an H200 its scores were
within 6e-13 of the numpy pass's, ``benchmarks/results/gpu_scoring_h200.json``).  Keras' torch
backend is not taken: through it the same model's scores on that GPU were up to 1e-4 off.

Only the neural detectors have a GPU path; Mahalanobis scores with numpy on the CPU whatever
the setting (its cost is one small matrix product a row).  The worker logs the placement at
start and exports it (``stream_od_scoring_info``).
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from typing import Any

from stream_od.detector.distinct import REPEATED
from stream_od.detector.forward import SUMS
from stream_od.errors import ConfigError

DEVICES = ("auto", "cpu", "gpu")
# The Keras backends a GPU is taken through: their compiled forward pass scores as numpy does.
GPU_BACKENDS = ("tensorflow", "jax")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    backend: str  # "numpy", or "keras-<its backend>": "keras-tensorflow", "keras-jax", ...
    device: str  # "cpu", or the backend's name of the GPU ("/physical_device:GPU:0", "cuda:0")

    def __str__(self) -> str:
        return f"{self.backend} on {self.device}"


def nvidia_driver_loaded() -> bool:
    """A cheap look before importing Keras' backend (seconds, hundreds of MB) to ask it:
    without the NVIDIA driver there is no GPU it could use."""
    return os.path.exists("/dev/nvidia0") or bool(glob.glob("/proc/driver/nvidia/gpus/*"))


def share_the_gpu() -> None:
    """Let several workers score on one GPU: at first use JAX takes 75 % of the GPU's memory
    and TensorFlow all of it, so a second worker on the host would fail to start, while each
    needs a few MB for its model and micro-batches.  Each backend is asked to take only what
    it uses (before it is imported; an operator's own setting of these variables stands)."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


def keras_backend() -> str | None:
    """The backend Keras runs on (``KERAS_BACKEND``, else Keras' own default, TensorFlow), or
    ``None`` when Keras is not installed (the lean worker)."""
    try:
        import keras
    except ImportError:
        return None
    return str(keras.backend.backend())


def visible_gpus() -> list[str]:
    """The GPUs Keras' backend sees, or ``[]`` when Keras is not installed or runs on a backend
    not in :data:`GPU_BACKENDS`."""
    backend = keras_backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        # jax.devices() lists the default platform's devices: the GPUs when jax has CUDA and
        # sees one, else the CPU.
        return [
            f"cuda:{d.id} ({d.device_kind})"
            for d in jax.devices()
            if d.platform in ("gpu", "cuda", "rocm")
        ]
    return []


def place(
    detector: Any, setting: str = "auto", sums: str = "exact", repeated: str = "once"
) -> Placement:
    """Put ``detector`` on the device ``setting`` asks for; returns where it now scores.
    ``sums``: how the numpy pass sums a layer (``exact`` or ``blas``,
    :data:`stream_od.detector.forward.SUMS`); a GPU's compiled pass has its own.
    ``repeated``: whether the numpy pass scores a batch's repeated rows ``once`` or ``each``
    time (:mod:`stream_od.detector.distinct`)."""
    if setting not in DEVICES:
        raise ConfigError(f"scoring_device must be one of {DEVICES}, got {setting!r}")
    if sums not in SUMS:
        raise ConfigError(f"scoring_sums must be one of {tuple(SUMS)}, got {sums!r}")
    if repeated not in REPEATED:
        raise ConfigError(f"scoring_repeated_rows must be one of {REPEATED}, got {repeated!r}")
    neural = hasattr(detector, "use_keras")
    probe = neural and (setting == "gpu" or (setting == "auto" and nvidia_driver_loaded()))
    if probe:
        share_the_gpu()
    gpus = visible_gpus() if probe else []
    if probe and not gpus and keras_backend() not in (*GPU_BACKENDS, None):
        message = (
            f"Keras runs on {keras_backend()}, through which a GPU's scores differ from the "
            f"CPU's (up to 1e-4 on an H200): set KERAS_BACKEND to one of {GPU_BACKENDS} to "
            "score on the GPU"
        )
        if setting == "gpu":
            raise ConfigError(f"scoring_device=gpu, but {message}")
        log.warning("scoring on the CPU: %s", message)
    if setting == "gpu" and neural and not gpus:
        raise ConfigError(
            f"scoring_device=gpu, but {_no_gpu()} (install stream-od[gpu] and the "
            "CUDA driver, or set STREAM_OD_SCORING_DEVICE=auto or cpu)"
        )
    if gpus:
        detector.use_keras()
        return Placement(f"keras-{keras_backend()}", gpus[0])
    if not neural:
        return Placement("numpy", "cpu")
    detector.use_numpy(sums, repeated)
    return Placement("numpy" if sums == "exact" else f"numpy-{sums}", "cpu")


def _no_gpu() -> str:
    backend = keras_backend()
    if backend is None:  # Keras missing, or the backend it is set to (import keras failed)
        named = os.environ.get("KERAS_BACKEND", "tensorflow")
        return f"no Keras backend is installed (Keras with {named})"
    return f"Keras' backend ({backend}) sees no GPU"
