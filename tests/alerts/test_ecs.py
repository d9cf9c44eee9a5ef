"""ECS alerts checked against Elastic's own field definitions (@elastic/ecs, tests/alerts/
ecs_fields.py) and against the query of Elastic Security's "External Alerts" rule.

Every leaf outside ``stream_od.*`` must be an ECS field holding a value of its ECS type, the
categorization fields must be within ECS's allowed values, and the document must be one the
rule selects.  The negative tests show that each check can fail.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from datetime import datetime
from typing import Any

import orjson
import pytest

from stream_od.alerts import ecs
from tests.alerts import ecs_fields
from tests.alerts.conftest import kdd_alert, summary_alert, zeek_alert

# The query of elastic/detection-rules rules/promotions/external_alerts.toml (rule_id
# eb079c62-4481-4d6e-9643-3ca499df7aaa, "External Alerts"), copied as it is there.
EXTERNAL_ALERTS_QUERY = """\
event.kind:alert and not event.module:(endgame or endpoint or cloud_defend) and
    not data_stream.dataset:(m365_defender.alert or m365_defender.incident)
"""
# ... and its severity_mapping (event.severity value -> the alert's severity).
EXTERNAL_ALERTS_SEVERITY = {21: "low", 47: "medium", 73: "high", 99: "critical"}

OWN = "stream_od"


@pytest.fixture(scope="module")
def ecs_schema() -> tuple[str, dict[str, dict[str, Any]]]:
    return ecs_fields.load()


def leaves(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{dotted path: value} of every leaf (a list is a leaf: ECS fields hold arrays)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = prefix + key
        if isinstance(value, dict):
            out.update(leaves(value, path + "."))
        else:
            out[path] = value
    return out


def _type_problem(ecs_type: str, value: Any) -> str | None:
    """Why ``value`` cannot be indexed as ``ecs_type`` (None when it can)."""
    if ecs_type in ("keyword", "constant_keyword", "wildcard", "match_only_text", "text"):
        ok = isinstance(value, str)
    elif ecs_type == "long":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif ecs_type in ("float", "scaled_float", "half_float", "double"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif ecs_type == "boolean":
        ok = isinstance(value, bool)
    elif ecs_type == "ip":
        try:
            ok = isinstance(value, str) and bool(ipaddress.ip_address(value))
        except ValueError:
            ok = False
    elif ecs_type == "date":
        try:
            ok = isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
        except ValueError:
            ok = False
    else:
        return f"no check written here for ECS type {ecs_type!r}"
    return None if ok else f"{value!r} is not a valid {ecs_type}"


def ecs_problems(doc: dict[str, Any], fields: dict[str, dict[str, Any]]) -> list[str]:
    """Everything in ``doc`` (outside ``stream_od``) that ECS does not define or allow."""
    problems = []
    flat = {path: value for path, value in leaves(doc).items() if not path.startswith(OWN + ".")}
    for name, spec in fields.items():
        if spec.get("required") and name not in flat:
            problems.append(f"{name}: required by ECS, missing")
    for path, value in flat.items():
        spec = fields.get(path)
        if spec is None:
            problems.append(f"{path}: not an ECS field")
            continue
        is_array = "array" in spec["normalize"]
        if is_array != isinstance(value, list):
            problems.append(f"{path}: {'must' if is_array else 'must not'} be an array")
            continue
        allowed = {a["name"] for a in spec.get("allowed_values", ())}
        for item in value if is_array else [value]:
            problem = _type_problem(spec["type"], item)
            if problem is not None:
                problems.append(f"{path}: {problem}")
            elif allowed and item not in allowed:
                problems.append(f"{path}: {item!r} is not among ECS's allowed values")
    expected = {
        a["name"]: set(a.get("expected_event_types", ()))
        for a in fields["event.category"]["allowed_values"]
    }
    for category in flat.get("event.category", []):
        for event_type in flat.get("event.type", []):
            if event_type not in expected.get(category, ()):
                problems.append(
                    f"event.type {event_type!r} is not expected with event.category {category!r}"
                )
    return problems


_CLAUSE = re.compile(r"(not\s+)?([\w.@]+):(?:\(([^()]*)\)|([^\s()]+))")


def kql_matches(query: str, doc: dict[str, Any]) -> bool:
    """The KQL the External Alerts query needs, no more: ``[not] field:value`` and
    ``[not] field:(v1 or v2 ...)`` clauses joined by ``and``, values compared as keywords (a
    missing field matches nothing, an array matches if any element does).  Anything else is
    refused loudly, so a changed rule query cannot be misread."""
    flat = leaves(doc)
    for clause in re.split(r"\s+and\s+", query.strip()):
        m = _CLAUSE.fullmatch(clause)
        if m is None:
            raise ValueError(f"this tiny KQL evaluator does not understand {clause!r}")
        negated, field, group, single = m.groups()
        values = re.split(r"\s+or\s+", group.strip()) if group is not None else [single]
        if not all(re.fullmatch(r"[\w.@-]+", v) for v in values):
            raise ValueError(f"this tiny KQL evaluator does not understand {clause!r}")
        got = flat.get(field)
        got = got if isinstance(got, list) else [] if got is None else [got]
        if any(str(g) in values for g in got) == bool(negated):
            return False
    return True


def test_the_documents_are_ecs(sample_alert, model, ecs_schema):
    _, fields = ecs_schema
    doc = ecs.document(sample_alert, model)
    assert ecs_problems(doc, fields) == []
    assert doc["ecs"]["version"] == ecs_schema[0] == ecs_fields.VERSION == ecs.ECS_VERSION
    assert doc["event"]["kind"] == "alert" and doc["event"]["id"] == sample_alert.id
    assert orjson.loads(orjson.dumps(doc)) == doc  # JSON as it is, nothing lost on the way


def test_stream_od_is_no_ecs_field_set(ecs_schema):
    _, fields = ecs_schema
    assert not [name for name in fields if name == OWN or name.startswith(OWN + ".")]


def test_external_alerts_picks_them_up_graded_right(sample_alert, model):
    doc = ecs.document(sample_alert, model)
    assert kql_matches(EXTERNAL_ALERTS_QUERY, doc)
    # as indexed in the data stream docs/siem.md sets up (logs-stream_od.alerts-default)
    indexed = {
        **doc,
        "data_stream": {"type": "logs", "dataset": "stream_od.alerts", "namespace": "default"},
    }
    assert kql_matches(EXTERNAL_ALERTS_QUERY, indexed)
    assert EXTERNAL_ALERTS_SEVERITY[doc["event"]["severity"]] == sample_alert.severity
    assert 0 <= doc["event"]["risk_score"] <= 100  # risk_score_mapping: event.risk_score


def test_absent_values_are_left_out(model):
    kdd = ecs.document(kdd_alert(), model)
    assert "source" not in kdd and "destination" not in kdd and "related" not in kdd
    assert kdd["network"] == {"transport": "tcp"} and "key" not in kdd[OWN]["kafka"]
    summary = ecs.document(summary_alert(), model)
    assert summary["source"] == {"ip": "192.0.2.10"}
    assert summary["related"] == {"ip": ["192.0.2.10"]}
    assert "record" not in summary[OWN] and summary[OWN]["summary"]["count"] == 41
    assert summary["event"]["start"] == "2026-12-02T14:00:00.123Z"
    assert None not in leaves(kdd).values() and None not in leaves(summary).values()


def test_timestamps_are_iso_utc_with_milliseconds():
    assert ecs.iso(1796220000123) == "2026-12-02T14:00:00.123Z"
    assert ecs.iso(0) == "1970-01-01T00:00:00.000Z"


# --- the checks can fail ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, value, complaint",
    [
        ("source.port", "52311", "is not a valid long"),  # a port as a string
        ("source.ip", "192.0.2.300", "is not a valid ip"),
        ("@timestamp", "yesterday", "is not a valid date"),
        ("event.risk_score", "high", "is not a valid float"),
        ("event.severity", 7.5, "is not a valid long"),
        ("event.category", "network", "must be an array"),
        ("event.kind", "anomaly", "not among ECS's allowed values"),
        ("event.type", ["denied", "connection"], "is not expected with event.category"),
        ("network.score", 1.0, "not an ECS field"),
        ("ecs", None, "ecs.version: required by ECS, missing"),
    ],
)
def test_the_ecs_check_rejects_what_ecs_rejects(model, ecs_schema, path, value, complaint):
    doc = copy.deepcopy(ecs.document(zeek_alert(), model))
    *parents, last = path.split(".") if not path.startswith("@") else [path]
    target = doc
    for part in parents:
        target = target.setdefault(part, {})
    if value is None:
        del target[last]
    else:
        target[last] = value
    problems = ecs_problems(doc, ecs_schema[1])
    assert any(complaint in p for p in problems), problems


def test_the_rule_query_check_rejects_what_the_rule_would_not_select(model):
    doc = ecs.document(zeek_alert(), model)
    assert not kql_matches(
        EXTERNAL_ALERTS_QUERY, {**doc, "event": {**doc["event"], "kind": "event"}}
    )
    assert not kql_matches(
        EXTERNAL_ALERTS_QUERY, {**doc, "event": {**doc["event"], "module": "endpoint"}}
    )
    assert not kql_matches(
        EXTERNAL_ALERTS_QUERY, {**doc, "data_stream": {"dataset": "m365_defender.alert"}}
    )
    with pytest.raises(ValueError, match="does not understand"):
        kql_matches("event.kind:alert or event.kind:signal", doc)
