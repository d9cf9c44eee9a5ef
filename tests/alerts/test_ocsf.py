"""OCSF alerts checked against py-ocsf-models' DetectionFinding (the OCSF classes as pydantic
models), as strictly as it can: the JSON as it travels, strict types, extra keys forbidden at
every level, and nothing we wrote dropped or changed by the model.  The negative tests show
that the check can fail.
"""

from __future__ import annotations

from typing import Any

import orjson
import py_ocsf_models
import pytest
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from pydantic import ValidationError

from stream_od.alerts import ocsf
from tests.alerts.conftest import kdd_alert, summary_alert, zeek_alert


def parse(doc: dict[str, Any]) -> DetectionFinding:
    """The document as a SIEM receives it (JSON), validated strictly: no coercion of types
    (a ``"123"`` is no integer), no key the model does not define, nested ones included."""
    return DetectionFinding.model_validate_json(orjson.dumps(doc), strict=True, extra="forbid")


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """{key path: value} of every leaf, list items by index."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {path: value}
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(leaves(item, f"{path}.{key}" if path else str(key)))
    return out


def lost(doc: dict[str, Any]) -> dict[str, Any]:
    """What the model does not give back as we wrote it: {key path: our value}."""
    kept = leaves(parse(doc).model_dump(mode="json", exclude_unset=True, exclude_none=True))
    return {
        path: value
        for path, value in leaves(doc).items()
        if path not in kept or kept[path] != value
    }


def test_the_documents_are_detection_findings(sample_alert, model):
    doc = ocsf.document(sample_alert, model)
    finding = parse(doc)
    assert lost(doc) == {}
    assert (finding.class_uid, finding.category_uid, finding.activity_id, finding.type_uid) == (
        2004,
        2,
        1,
        200401,
    )
    assert finding.finding_info.uid == sample_alert.id
    assert finding.finding_info.analytic.type_id == ocsf.ANALYTIC_LEARNING
    assert finding.time == sample_alert.event_time_ms


def test_the_schema_version_is_the_libraries():
    assert ocsf.OCSF_VERSION == py_ocsf_models.OCSF_VERSION


def test_severity_follows_ocsfs_scale(sample_alert, model):
    finding = parse(ocsf.document(sample_alert, model))
    assert finding.severity_id.name == finding.severity == sample_alert.severity.capitalize()


def test_connection_and_summary(model):
    zeek = ocsf.document(zeek_alert(), model)
    data = zeek["evidences"][0]["data"]
    assert data["src_endpoint"] == {"ip": "192.0.2.10", "port": 52311}
    assert data["connection_info"]["community_uid"].startswith("1:")
    assert [o["value"] for o in zeek["observables"]] == ["192.0.2.10", "198.51.100.20"]
    kdd = ocsf.document(kdd_alert(), model)
    assert kdd["evidences"] == [{"data": {"connection_info": {"protocol_name": "tcp"}}}]
    assert "observables" not in kdd and "key" not in kdd["unmapped"]["kafka"]
    summary = ocsf.document(summary_alert(), model)
    assert summary["count"] == 41 and "record" not in summary["unmapped"]
    info = summary["finding_info"]
    assert info["last_seen_time"] - info["first_seen_time"] == 299_000


# --- the check can fail ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"time": "1796220000123"},  # a string time
        {"severity_id": 7},  # not in OCSF's severity enum
        {"type_uid": 300201},  # not a Detection Finding type
        {"is_alert": True},  # OCSF's, but not modelled by the library
        {"finding_info": {"uid": "x", "title": "x", "analytics": {}}},  # a misspelt key
        {"evidences": [{"src_endpoint": {"ip": "192.0.2.10"}}]},  # not modelled either
    ],
)
def test_the_check_rejects_a_broken_document(model, change):
    with pytest.raises(ValidationError):
        parse({**ocsf.document(zeek_alert(), model), **change})


def test_the_survival_check_sees_what_the_model_drops(model):
    # a null passes validation but does not come back: we never write one, and lost() would say
    doc = {**ocsf.document(zeek_alert(), model), "comment": None}
    parse(doc)
    assert lost(doc) == {"comment": None}
