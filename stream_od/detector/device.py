"""Where a detector scores: numpy on the CPU, or Keras' compiled function on a GPU.

``STREAM_OD_SCORING_DEVICE`` is ``auto`` (a GPU when TensorFlow is installed and sees one, the
CPU otherwise), ``cpu`` or ``gpu`` (refused at start when there is none, rather than scoring
somewhere else than the operator asked).  Only the neural detectors have a GPU path;
Mahalanobis scores with numpy on the CPU whatever the setting (its cost is one small matrix
product a row).  The worker logs the placement at start and exports
it (``stream_od_scoring_info``).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any

from stream_od.errors import ConfigError

DEVICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class Placement:
    backend: str  # "numpy" or "keras"
    device: str  # "cpu", or TensorFlow's name of the GPU ("/physical_device:GPU:0")

    def __str__(self) -> str:
        return f"{self.backend} on {self.device}"


def nvidia_driver_loaded() -> bool:
    """A cheap look before importing TensorFlow (seconds, hundreds of MB) to ask it: without
    the NVIDIA driver there is no GPU it could use."""
    return os.path.exists("/dev/nvidia0") or bool(glob.glob("/proc/driver/nvidia/gpus/*"))


def visible_gpus() -> list[str]:
    """TensorFlow's GPUs, or ``[]`` when TensorFlow is not installed (the lean worker)."""
    try:
        import tensorflow as tf
    except ImportError:
        return []
    return [d.name for d in tf.config.list_physical_devices("GPU")]


def place(detector: Any, setting: str = "auto") -> Placement:
    """Put ``detector`` on the device ``setting`` asks for; returns where it now scores."""
    if setting not in DEVICES:
        raise ConfigError(f"scoring_device must be one of {DEVICES}, got {setting!r}")
    neural = hasattr(detector, "use_keras")
    probe = neural and (setting == "gpu" or (setting == "auto" and nvidia_driver_loaded()))
    gpus = visible_gpus() if probe else []
    if setting == "gpu" and neural and not gpus:
        raise ConfigError(
            "scoring_device=gpu, but TensorFlow sees no GPU (install stream-od[gpu] and the "
            "CUDA driver, or set STREAM_OD_SCORING_DEVICE=auto or cpu)"
        )
    if gpus:
        detector.use_keras()
        return Placement("keras", gpus[0])
    if neural:
        detector.use_numpy()
    return Placement("numpy", "cpu")
