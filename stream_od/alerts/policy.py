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
    max_bytes: int = 900_000  # an alert must fit the producer's message.max.bytes

    def severities(self, scores: np.ndarray) -> np.ndarray:
        return severities(scores, self.threshold, self.score_scale, self.severity_margins)

    def build(self, origins: Sequence[Origin], records: Sequence[dict[str, Any]],
              scores: np.ndarray, sev: np.ndarray, X: np.ndarray, contributions: np.ndarray,
              detected_at_ms: int) -> list[bytes]:
        """One JSON document per alert row (the caller selected the rows over threshold)."""
        tops = top_features(contributions, X, self.feature_names, self.top_k)
        return [dumps_bounded({
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
        }, self.max_bytes) for o, rec, s, sv, top in zip(origins, records, scores, sev, tops)]

    def score_record(self, origin: Origin, score: float) -> bytes:
        """The optional per-record score document for the scores topic."""
        return orjson.dumps({"source": origin.to_dict(), "score": score,
                             "alert": bool(score > self.threshold),
                             "model_version": self.model_version})


MAX_DEPTH = 64


def dumps_bounded(doc: dict[str, Any], max_bytes: int) -> bytes:
    """``doc`` as JSON, whatever its ``record`` holds: a record orjson cannot write (nested
    deeper than it allows, an integer past 64 bits, a lone surrogate) is written through
    :func:`json_safe`; one whose alert would not fit ``max_bytes`` is replaced by its size,
    so an alert never fails on the content of the record it is about (the record itself is
    at its ``source`` coordinates in the input topic)."""
    try:
        out = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        doc = {**doc, "record": json_safe(doc.get("record"))}
        out = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if len(out) > max_bytes:
        doc = {**doc, "record": {"stream_od_omitted": {
            "reason": "too_large", "json_bytes": len(out),
            "detail": f"the alert would exceed max_output_bytes {max_bytes}; the record is at "
                      "the source coordinates"}}}
        out = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    return out


def json_safe(value: Any, depth: int = 0) -> Any:
    """A copy of a decoded JSON value that orjson can always write."""
    if depth >= MAX_DEPTH:
        return f"<nested deeper than {MAX_DEPTH} levels>"
    if isinstance(value, dict):
        return {json_safe_text(str(k)): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, str):
        return json_safe_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -(1 << 63) <= value < (1 << 64) else str(value)
    return json_safe_text(str(value))


def json_safe_text(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:  # lone surrogates
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
