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
import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import orjson

from stream_od import __version__
from stream_od.alerts.facts import Alert, Connection, KafkaCoordinates, ModelInfo
from stream_od.alerts.identity import IdentityReader, alert_id
from stream_od.alerts.jsonsafe import json_safe
from stream_od.schema import FeatureSchema

log = logging.getLogger(__name__)

SEVERITIES = ("low", "medium", "high", "critical")


class Origin(NamedTuple):
    """Where a record came from in Kafka (a named tuple: one is built per alert)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
        }


def decode_key(key: bytes | None) -> str | None:
    """A key as text; a key that is not UTF-8 travels as ``base64:...``."""
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(key).decode("ascii")


def severities(
    scores: np.ndarray, threshold: float, scale: float, margins: Sequence[float]
) -> np.ndarray:
    """Severity label of each score (vectorised)."""
    margin = (np.asarray(scores, dtype=np.float64) - threshold) / scale
    return np.asarray(SEVERITIES, dtype=object)[
        np.searchsorted(np.asarray(margins), margin, side="right")
    ]


def top_features(
    contributions: np.ndarray, X: np.ndarray, names: Sequence[str], k: int
) -> list[list[dict[str, Any]]]:
    """For each row, the ``k`` features with the largest contribution, largest first (ties:
    the lower column first; NaN after every number)."""
    n, width = contributions.shape if contributions.ndim == 2 else (len(contributions), 0)
    if k <= 0 or n == 0 or width == 0:
        return [[] for _ in range(n)]
    k = min(k, width)
    contributions = np.asarray(contributions, dtype=np.float64)
    cols = _top_columns(contributions, k)
    values = np.take_along_axis(contributions, cols, axis=1).tolist()
    inputs = np.take_along_axis(X, cols, axis=1).tolist()
    return [
        [{"feature": names[j], "contribution": c, "value": v} for j, c, v in zip(row, crow, vrow)]
        for row, crow, vrow in zip(cols.tolist(), values, inputs)
    ]


def _top_columns(contributions: np.ndarray, k: int) -> np.ndarray:
    """The columns of :func:`top_features`, ``(n, k)``.  An alert's model has finite
    contributions (a row with another has no finite score and is a dead letter, not an alert):
    then ``k`` passes of ``argmax``, each taking the first of the largest (the lower column on a
    tie) and striking it out.  Anything else takes a stable sort of the whole row, which ranks
    NaN last.  (Selecting with ``argpartition`` and sorting the ``k``, as before 2026-12-06, was
    slower, and on a tie at the k-th place chose any of the tied columns.)"""
    n, width = contributions.shape
    if k < width and np.isfinite(contributions).all():
        work, rows = contributions.copy(), np.arange(n)
        cols = np.empty((n, k), dtype=np.intp)
        for i in range(k):
            cols[:, i] = work.argmax(axis=1)
            work[rows, cols[:, i]] = -np.inf  # below every finite value: not taken again
        return cols
    return np.argsort(-contributions, axis=1, kind="stable")[:, :k]


FORMATS = ("native", "ecs", "ocsf")


def risk_scores(
    scores: np.ndarray, threshold: float, scale: float, margins: Sequence[float]
) -> np.ndarray:
    """A 0-100 risk score for each score, in bands that match the severity: the margin over
    the threshold (in score-scale units) maps linearly onto Elastic's bands, low 0-21, medium
    22-47, high 48-73, critical 74-100 (the last approaching 100 as the margin grows), so a
    SIEM that grades by risk score agrees with ``severity``."""
    margin = np.maximum((np.asarray(scores, dtype=np.float64) - threshold) / scale, 0.0)
    m0, m1, m2 = (float(m) for m in margins)
    edges = np.array([0.0, m0, max(m1, m0), max(m2, m1, m0)])
    floors, widths = np.array([0.0, 22.0, 48.0]), np.array([21.0, 25.0, 25.0])
    band = np.clip(np.searchsorted(edges, margin, side="right") - 1, 0, 3)
    risk = np.empty_like(margin)
    inside = band < 3
    b = band[inside]
    span = np.maximum(edges[b + 1] - edges[b], 1e-12)
    risk[inside] = floors[b] + widths[b] * (margin[inside] - edges[b]) / span
    tail = max(m2 - m1, 1e-12)  # critical approaches 100 at the pace of the high band
    risk[~inside] = 74.0 + 26.0 * (1.0 - np.exp(-(margin[~inside] - edges[3]) / tail))
    return np.round(np.minimum(risk, 100.0), 1)


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
    schema: FeatureSchema | None = None  # identity, event time and label fields
    alert_format: str = "native"

    def __post_init__(self) -> None:
        if self.alert_format not in FORMATS:
            raise ValueError(f"alert format {self.alert_format!r}: one of {FORMATS}")
        s = self.schema
        object.__setattr__(
            self,
            "identity",
            IdentityReader(
                s.identity if s is not None else None, s.time_field if s is not None else None
            ),
        )
        object.__setattr__(self, "labels", frozenset(s.label_fields if s is not None else ()))
        object.__setattr__(
            self,
            "model",
            ModelInfo(
                version=self.model_version,
                detector=self.detector,
                schema=s.name if s is not None else "custom",
                threshold=self.threshold,
                product_version=__version__,
            ),
        )
        object.__setattr__(
            self,
            "_document",
            importlib.import_module(  # alerts/<format>.py
                f"stream_od.alerts.{self.alert_format}"
            ).document,
        )
        object.__setattr__(  # one list per severity and kind, built once, not once per alert
            self,
            "_headers",
            {
                (sv, summary): self._header_list(sv, summary)
                for sv in SEVERITIES
                for summary in (False, True)
            },
        )

    identity: IdentityReader = field(init=False, repr=False, compare=False)
    labels: frozenset[str] = field(init=False, repr=False, compare=False)
    model: ModelInfo = field(init=False, repr=False, compare=False)
    _document: Callable[[Alert, ModelInfo], dict[str, Any]] = field(
        init=False, repr=False, compare=False
    )
    _headers: dict[tuple[str, bool], list[tuple[str, bytes]]] = field(
        init=False, repr=False, compare=False
    )

    def severities(self, scores: np.ndarray) -> np.ndarray:
        return severities(scores, self.threshold, self.score_scale, self.severity_margins)

    def facts(
        self,
        origins: Sequence[Origin],
        records: Sequence[dict[str, Any]],
        scores: np.ndarray,
        X: np.ndarray,
        contributions: np.ndarray,
        detected_at_ms: int,
    ) -> list[Alert]:
        """One :class:`Alert` per row (the caller selected the rows over the threshold)."""
        sev = self.severities(scores)
        risk = risk_scores(scores, self.threshold, self.score_scale, self.severity_margins)
        tops = top_features(contributions, X, self.feature_names, self.top_k)
        records = [self.without_labels(rec) for rec in records]
        try:
            connections = self.identity.connections(records)
        except Exception:  # a record's fields must not stop its partition: find it, go on
            connections = [self._connection(o, rec) for o, rec in zip(origins, records)]
        times = self.identity.event_times_ms(records, [o.timestamp_ms for o in origins])
        version = self.model_version
        out = []
        for kafka, rec, conn, (when, when_from), s, sv, r, top in zip(
            self.coordinates(origins),
            records,
            connections,
            times,
            scores.tolist(),
            sev.tolist(),
            risk.tolist(),
            tops,
        ):
            out.append(
                Alert(
                    id=alert_id(version, conn, when, kafka),
                    event_time_ms=when,
                    event_time_source=when_from,
                    detected_at_ms=detected_at_ms,
                    score=s,
                    severity=sv,
                    risk_score=r,
                    top_features=top,
                    record=rec,
                    connection=conn,
                    kafka=kafka,
                )
            )
        return out

    @staticmethod
    def coordinates(origins: Sequence[Origin]) -> list[KafkaCoordinates]:
        """Each record's Kafka coordinates as an alert names them (its key as text)."""
        return [
            KafkaCoordinates(o.topic, o.partition, o.offset, o.timestamp_ms, decode_key(o.key))
            for o in origins
        ]

    def _connection(self, origin: Origin, record: dict[str, Any]) -> Connection:
        """One record's connection, or none known when reading it fails: the alert goes out
        without it rather than stop the partition on a field no test foresaw (logged)."""
        try:
            return self.identity.connection(record)
        except Exception:
            log.exception(
                "could not read the connection of %s[%d]@%d; its alert goes without one",
                origin.topic,
                origin.partition,
                origin.offset,
            )
            return Connection()

    def finish_summaries(self, summaries: list[Alert], detected_at_ms: int) -> list[Alert]:
        """Summary alerts graded as an alert of their highest score would be."""
        if not summaries:
            return summaries
        scores = np.array([a.score for a in summaries])
        risk = risk_scores(scores, self.threshold, self.score_scale, self.severity_margins)
        return [
            replace(a, severity=sv, risk_score=r, detected_at_ms=detected_at_ms)
            for a, sv, r in zip(summaries, self.severities(scores).tolist(), risk.tolist())
        ]

    def without_labels(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record as it may leave in an alert: ground-truth label fields removed."""
        if self.labels and not self.labels.isdisjoint(record):
            return {k: v for k, v in record.items() if k not in self.labels}
        return record

    def render(self, alert: Alert) -> bytes:
        """The alert in this policy's format, as JSON that always fits ``max_bytes``."""
        document = self._document
        model = self.model

        def build(record: Any) -> dict[str, Any]:
            return document(
                alert if record is alert.record else replace(alert, record=record), model
            )

        return dumps_bounded(build, alert.record, self.max_bytes)

    def headers(self, alert: Alert) -> list[tuple[str, bytes]]:
        """Kafka headers, so a connector can route an alert without parsing it (the same list
        for every alert of a severity and kind: the producer only reads it)."""
        key = (alert.severity, alert.summary is not None)
        found = self._headers.get(key)
        return found if found is not None else self._header_list(*key)

    def _header_list(self, severity: str, summary: bool) -> list[tuple[str, bytes]]:
        return [
            ("stream_od.format", self.alert_format.encode()),
            ("stream_od.schema", self.model.schema.encode("utf-8", "replace")),
            ("stream_od.severity", severity.encode()),
            ("stream_od.kind", b"summary" if summary else b"alert"),
        ]

    def score_record(self, origin: Origin, score: float) -> bytes:
        """The optional per-record score document for the scores topic."""
        return orjson.dumps(
            {
                "kafka": origin.to_dict(),
                "score": score,
                "alert": bool(score > self.threshold),
                "model_version": self.model_version,
            }
        )


def dumps_bounded(build: Callable[[Any], dict[str, Any]], record: Any, max_bytes: int) -> bytes:
    """``build(record)`` as JSON, whatever ``record`` holds: a record orjson cannot write
    (nested deeper than it allows, an integer past 64 bits, a lone surrogate) is written
    through :func:`json_safe`; one whose alert would not fit ``max_bytes`` is replaced by its
    size, so an alert never fails on the content of the record it is about (the record itself
    is at its Kafka coordinates in the input topic)."""
    try:
        out = orjson.dumps(build(record), option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        record = json_safe(record)
        out = _dump(build(record))
    if len(out) > max_bytes:
        record = {
            "stream_od_omitted": {
                "reason": "too_large",
                "json_bytes": len(out),
                "detail": f"the alert would exceed max_output_bytes {max_bytes}; the record is at "
                "its Kafka coordinates",
            }
        }
        out = _dump(build(record))
    return out


def _dump(document: dict[str, Any]) -> bytes:
    """The document as JSON; should a fact besides the record be unwritable as well (text read
    from the record into the connection, say), the whole document made writable."""
    try:
        return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        return orjson.dumps(json_safe(document), option=orjson.OPT_SERIALIZE_NUMPY)
