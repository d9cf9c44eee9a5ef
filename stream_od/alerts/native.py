"""stream-od's own alert document (``STREAM_OD_ALERT_FORMAT=native``, the default).

Flat and literal: every fact of :class:`~stream_od.alerts.facts.Alert` under its own name, the
Kafka coordinates of the record under ``kafka`` (as Elastic's Kafka input names them, so they
never collide with a SIEM's ``source``), the connection under ``connection`` when the schema
names one.
"""

from __future__ import annotations

from typing import Any

from stream_od.alerts.facts import Alert, Connection, ModelInfo

CONNECTION_FIELDS = Connection._fields


def document(alert: Alert, model: ModelInfo) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": alert.id,
        "event_time_ms": alert.event_time_ms,
        "event_time_source": alert.event_time_source,
        "detected_at_ms": alert.detected_at_ms,
        "score": alert.score,
        "threshold": model.threshold,
        "severity": alert.severity,
        "risk_score": alert.risk_score,
        "model_version": model.version,
        "detector": model.detector,
        "schema": model.schema,
        "top_features": alert.top_features,
        "kafka": alert.kafka.as_fields(),  # no "key" when the record had none
    }
    # the document names the connection's parts as Connection does (what it knows of them)
    connection = {n: v for n, v in zip(CONNECTION_FIELDS, alert.connection) if v is not None}
    if connection:
        doc["connection"] = connection
    if alert.record is not None:
        doc["record"] = alert.record
    s = alert.summary
    if s is not None:
        doc["summary"] = {
            "count": s.count,
            "first_ms": s.first_ms,
            "last_ms": s.last_ms,
            "max_score": s.max_score,
            "window_s": s.window_s,
            "entity": s.entity,
            "first_alert_id": s.first_alert_id,
        }
    return doc
