"""Alerts as Elastic Common Schema 9.x documents (``STREAM_OD_ALERT_FORMAT=ecs``).

Written so that Elastic Security's prebuilt rule "External Alerts" (elastic/detection-rules,
``rules/promotions/external_alerts.toml``) promotes every alert as it arrives, graded right:

* its query is ``event.kind:alert and not event.module:(endgame or endpoint or cloud_defend)
  and not data_stream.dataset:(m365_defender.alert or m365_defender.incident)`` over
  ``logs-*``, ``filebeat-*`` and a few other patterns, so ``event.kind`` is ``alert``,
  ``event.module`` is ``stream_od`` and the alerts belong in a ``logs-*`` data stream
  (docs/siem.md);
* its ``severity_mapping`` reads ``event.severity``: 21 -> low, 47 -> medium, 73 -> high,
  99 -> critical (anything else keeps the rule's default, medium), hence :data:`SEVERITY`;
* its ``risk_score_mapping`` takes ``event.risk_score`` as it is (our 0-100, in bands that
  match Elastic's severity bands);
* its ``rule_name_override`` is ``message``: the alert in Kibana is named after our
  ``message``, so ``message`` is the (stable) rule name, not a per-alert sentence;
* its ``timestamp_override`` is ``event.ingested``, which the ingest side sets (docs/siem.md).

``event.category`` network + intrusion_detection with ``event.type`` ``info``: the one type
that ECS expects for both categories and that claims no action (we neither allow nor deny).
Everything of stream-od's own (score, threshold, top features, model, Kafka coordinates, the
record, a summary) is under the top-level ``stream_od`` object, which is no ECS field set.
tests/alerts/test_ecs.py checks the documents against @elastic/ecs's own field definitions.

On the worker's hot path: plain dict literals, nothing validated here, absent values left out.
"""

from __future__ import annotations

import time
from typing import Any

from stream_od.alerts.facts import PRODUCT, VENDOR, Alert, ModelInfo

ECS_VERSION = "9.4.0"  # the @elastic/ecs release the test checks against

# event.severity the External Alerts rule maps to its own low/medium/high/critical
SEVERITY = {"low": 21, "medium": 47, "high": 73, "critical": 99}


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds ("2026-12-02T14:00:00.123Z")."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def rule_id(model: ModelInfo) -> str:
    """The rule's id: the detector on the schema, stable across retrains (the model version
    is the rule's version), so a SIEM groups, tunes and suppresses one rule per deployment."""
    return f"{PRODUCT}:{model.schema}:{model.detector}"


def rule_name(model: ModelInfo) -> str:
    return f"{PRODUCT} anomaly: {model.schema} ({model.detector})"


def endpoint(ip: str | None, port: int | None) -> dict[str, Any] | None:
    """``{"ip", "port"}`` with what is known (ECS source/destination and OCSF endpoints
    alike), None when neither is."""
    if ip is None and port is None:
        return None
    if port is None:
        return {"ip": ip}
    return {"port": port} if ip is None else {"ip": ip, "port": port}


def document(alert: Alert, model: ModelInfo) -> dict[str, Any]:
    name = rule_name(model)
    kafka = alert.kafka.as_fields()
    event: dict[str, Any] = {
        "kind": "alert",
        "category": ["network", "intrusion_detection"],
        "type": ["info"],
        "id": alert.id,
        "created": iso(alert.detected_at_ms),
        "severity": SEVERITY[alert.severity],
        "risk_score": alert.risk_score,
        "module": "stream_od",
        "dataset": "stream_od.alerts",
    }
    own: dict[str, Any] = {
        "score": alert.score,
        "threshold": model.threshold,
        "severity": alert.severity,
        "model_version": model.version,
        "detector": model.detector,
        "schema": model.schema,
        "event_time_source": alert.event_time_source,
        "top_features": alert.top_features,
        "kafka": kafka,
    }
    doc: dict[str, Any] = {
        "@timestamp": iso(alert.event_time_ms),
        "ecs": {"version": ECS_VERSION},
        "message": name,
        "event": event,
        "observer": {
            "vendor": VENDOR,
            "product": PRODUCT,
            "version": model.product_version,
            "type": "ids",
        },
        "rule": {
            "id": rule_id(model),
            "name": name,
            "version": model.version,
            "category": "anomaly",
            "ruleset": PRODUCT,
        },
        "stream_od": own,
    }

    c = alert.connection
    source = endpoint(c.source_ip, c.source_port)
    if source is not None:
        doc["source"] = source
    destination = endpoint(c.destination_ip, c.destination_port)
    if destination is not None:
        doc["destination"] = destination
    ips = [ip for ip in (c.source_ip, c.destination_ip) if ip is not None]
    if ips:
        doc["related"] = {"ip": ips[:1] if len(ips) == 2 and ips[0] == ips[1] else ips}
    network: dict[str, Any] = {}
    if c.transport is not None:
        network["transport"] = c.transport
    if c.community_id is not None:
        network["community_id"] = c.community_id
    if network:
        doc["network"] = network
    if c.session_id is not None:
        own["session_id"] = c.session_id

    if alert.record is not None:
        own["record"] = alert.record
    s = alert.summary
    if s is not None:
        event["start"] = iso(s.first_ms)
        event["end"] = iso(s.last_ms)
        own["summary"] = {
            "count": s.count,
            "first_ms": s.first_ms,
            "last_ms": s.last_ms,
            "max_score": s.max_score,
            "window_s": s.window_s,
            "entity": s.entity,
            "first_alert_id": s.first_alert_id,
        }
    return doc
