"""Scores -> alerts: what a SIEM receives for every record over the threshold.

An alert says where the record came from (topic, partition, offset, timestamp, key), what it
was (its original fields), how anomalous (score, threshold, severity, model version) and why
(the features with the largest contribution, e.g. standardized reconstruction errors), so an
analyst can triage without re-running the model.

Severity grades the margin over the threshold in units of the model's score scale (the spread
of scores on normal traffic, stored in the artifact): below ``margins[0]`` is ``low``, then
``medium``, ``high`` and ``critical``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import orjson

SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Origin:
    """Where a record came from in Kafka."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                "timestamp_ms": self.timestamp_ms}


def decode_key(key: bytes | None) -> str | None:
    """A key as text; a key that is not UTF-8 travels as ``base64:...``."""
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(key).decode("ascii")


def severities(scores: np.ndarray, threshold: float, scale: float,
               margins: Sequence[float]) -> np.ndarray:
    """Severity label of each score (vectorised)."""
    margin = (np.asarray(scores, dtype=np.float64) - threshold) / scale
    return np.asarray(SEVERITIES, dtype=object)[np.searchsorted(np.asarray(margins), margin,
                                                                side="right")]


def top_features(contributions: np.ndarray, X: np.ndarray, names: Sequence[str],
                 k: int) -> list[list[dict[str, Any]]]:
    """For each row, the ``k`` features with the largest contribution, largest first."""
    if k <= 0 or len(contributions) == 0:
        return [[] for _ in range(len(contributions))]
    k = min(k, contributions.shape[1])
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
    return [[{"feature": names[j], "contribution": float(contributions[r, j]),
              "value": float(X[r, j])} for j in order[r]] for r in range(len(order))]


@dataclass(frozen=True)
class AlertPolicy:
    """How alerts are built for one model; rebuilt when the model changes."""

    feature_names: tuple[str, ...]
    threshold: float
    score_scale: float
    model_version: str
    detector: str
    severity_margins: tuple[float, float, float]
    top_k: int

    def severities(self, scores: np.ndarray) -> np.ndarray:
        return severities(scores, self.threshold, self.score_scale, self.severity_margins)

    def build(self, origins: Sequence[Origin], records: Sequence[dict[str, Any]],
              scores: np.ndarray, sev: np.ndarray, X: np.ndarray, contributions: np.ndarray,
              detected_at_ms: int) -> list[bytes]:
        """One JSON document per alert row (the caller selected the rows over threshold)."""
        tops = top_features(contributions, X, self.feature_names, self.top_k)
        return [orjson.dumps({
            "source": o.to_dict(),
            "key": decode_key(o.key),
            "record": rec,
            "score": float(s),
            "threshold": self.threshold,
            "severity": sv,
            "model_version": self.model_version,
            "detector": self.detector,
            "top_features": top,
            "detected_at_ms": detected_at_ms,
        }, option=orjson.OPT_SERIALIZE_NUMPY) for o, rec, s, sv, top in
            zip(origins, records, scores, sev, tops)]

    def score_record(self, origin: Origin, score: float) -> bytes:
        """The optional per-record score document for the scores topic."""
        return orjson.dumps({"source": origin.to_dict(), "score": score,
                             "alert": bool(score > self.threshold),
                             "model_version": self.model_version})
