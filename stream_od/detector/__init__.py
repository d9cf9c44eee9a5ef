"""Detectors behind one API: ``fit`` / ``score`` / ``predict`` / ``infer_threshold``.

The neural detectors import Keras; they are loaded lazily so that the Mahalanobis
detector (and the artifact loader for it) stays importable without paying for it.
"""

from __future__ import annotations

from stream_od.detector.base import BaseDetector, DetectorState, NotFittedError
from stream_od.detector.mahalanobis import Mahalanobis

DETECTOR_KINDS = ("vaegmm", "aegmm", "mahalanobis")


def detector_class(kind: str) -> type[BaseDetector]:
    if kind == "mahalanobis":
        return Mahalanobis
    if kind == "vaegmm":
        from stream_od.detector.vaegmm import VAEGMM

        return VAEGMM
    if kind == "aegmm":
        from stream_od.detector.aegmm import AEGMM

        return AEGMM
    raise ValueError(f"unknown detector kind {kind!r}; expected one of {DETECTOR_KINDS}")


def restore(state: DetectorState) -> BaseDetector:
    """The detector ``state`` describes: built from its parameters (which the constructor
    checks), then given its fitted state."""
    detector = detector_class(state.kind)(**state.params)
    detector.__setstate__(state)
    return detector


def __getattr__(name: str):
    if name == "VAEGMM":
        from stream_od.detector.vaegmm import VAEGMM

        return VAEGMM
    if name == "AEGMM":
        from stream_od.detector.aegmm import AEGMM

        return AEGMM
    raise AttributeError(name)


__all__ = [
    "BaseDetector",
    "DetectorState",
    "NotFittedError",
    "Mahalanobis",
    "DETECTOR_KINDS",
    "detector_class",
    "restore",
    "VAEGMM",
    "AEGMM",
]
