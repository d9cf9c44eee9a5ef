"""Alerts as OCSF Detection Findings (``STREAM_OD_ALERT_FORMAT=ocsf``).

Class Detection Finding (``class_uid`` 2004, category Findings 2), activity Create (1), so
``type_uid`` 200401; ``time`` is the event's time, ``finding_info.created_time`` the detection's.
The model is the finding's analytic: type "Learning (ML/DL)", ``type_id`` 4 in OCSF's
``objects/analytic.json``; its ``uid`` is the rule id shared with the ECS format (detector on
schema, stable across retrains), its ``version`` the model version.

Only attributes that py-ocsf-models (the OCSF classes as pydantic models, OCSF
:data:`OCSF_VERSION`) defines are written, and tests/alerts/test_ocsf.py parses every document
with it, extra keys forbidden.  That library does not (yet) model OCSF's ``is_alert`` nor the
``src_endpoint`` / ``dst_endpoint`` / ``connection_info`` of an evidence, so:

* ``is_alert`` is left out (every document of this format is an alert anyway);
* the connection travels in the evidence's free-form ``data``, under OCSF's own names
  (``src_endpoint.ip/port``, ``dst_endpoint.ip/port``, ``connection_info.protocol_name /
  community_uid / uid``), ready to move up a level once the library models them;
* its addresses are also ``observables`` (type IP Address), where OCSF consumers look for
  IPs whatever the class.

Score, threshold, top features, Kafka coordinates, the record and a summary's details are in
``unmapped``.  On the worker's hot path: plain dict literals, nothing validated here, absent
values left out.
"""

from __future__ import annotations

from typing import Any

from stream_od.alerts.ecs import endpoint, rule_id, rule_name
from stream_od.alerts.facts import PRODUCT, VENDOR, Alert, ModelInfo

OCSF_VERSION = "1.5.0"  # py_ocsf_models.OCSF_VERSION (checked by the test)

SEVERITY_ID = {"low": 2, "medium": 3, "high": 4, "critical": 5}
SEVERITY = {"low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}
ANALYTIC_LEARNING = 4  # analytic.type_id "Learning (ML/DL)"
OBSERVABLE_IP = 2  # observable.type_id "IP Address"


def document(alert: Alert, model: ModelInfo) -> dict[str, Any]:
    name = rule_name(model)
    kafka = alert.kafka.as_fields()
    finding: dict[str, Any] = {
        "uid": alert.id,
        "title": name,
        "created_time": alert.detected_at_ms,
        "analytic": {
            "uid": rule_id(model),
            "name": name,
            "type": "Learning (ML/DL)",
            "type_id": ANALYTIC_LEARNING,
            "version": model.version,
        },
    }
    unmapped: dict[str, Any] = {
        "score": alert.score,
        "threshold": model.threshold,
        "risk_score": alert.risk_score,
        "detector": model.detector,
        "schema": model.schema,
        "event_time_source": alert.event_time_source,
        "top_features": alert.top_features,
        "kafka": kafka,
    }
    doc: dict[str, Any] = {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "time": alert.event_time_ms,
        "severity_id": SEVERITY_ID[alert.severity],
        "severity": SEVERITY[alert.severity],
        "status_id": 1,
        "status": "New",
        "message": name,
        "risk_score": round(alert.risk_score),  # an integer in OCSF; exact value in unmapped
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": PRODUCT, "vendor_name": VENDOR, "version": model.product_version},
        },
        "finding_info": finding,
        "unmapped": unmapped,
    }

    c = alert.connection
    data: dict[str, Any] = {}
    observables: list[dict[str, Any]] = []
    source = endpoint(c.source_ip, c.source_port)
    if source is not None:
        data["src_endpoint"] = source
    destination = endpoint(c.destination_ip, c.destination_port)
    if destination is not None:
        data["dst_endpoint"] = destination
    info: dict[str, Any] = {}
    if c.transport is not None:
        info["protocol_name"] = c.transport
    if c.community_id is not None:
        info["community_uid"] = c.community_id
    if c.session_id is not None:
        info["uid"] = c.session_id
    if info:
        data["connection_info"] = info
    if data:
        doc["evidences"] = [{"data": data}]
    if c.source_ip is not None:
        observables.append(
            {
                "name": "evidences.data.src_endpoint.ip",
                "type": "IP Address",
                "type_id": OBSERVABLE_IP,
                "value": c.source_ip,
            }
        )
    if c.destination_ip is not None:
        observables.append(
            {
                "name": "evidences.data.dst_endpoint.ip",
                "type": "IP Address",
                "type_id": OBSERVABLE_IP,
                "value": c.destination_ip,
            }
        )
    if observables:
        doc["observables"] = observables

    if alert.record is not None:
        unmapped["record"] = alert.record
    s = alert.summary
    if s is not None:
        doc["count"] = s.count
        finding["first_seen_time"] = s.first_ms
        finding["last_seen_time"] = s.last_ms
        unmapped["summary"] = {
            "max_score": s.max_score,
            "window_s": s.window_s,
            "entity": s.entity,
            "first_alert_id": s.first_alert_id,
        }
    return doc
