"""deploy/grafana: the dashboard JSON is well formed and shows what the issue asks for."""

from __future__ import annotations

import re

import pytest

from stream_od.registry.errors import REFUSAL_REASONS
from tests.deploy import stack


@pytest.fixture(scope="module")
def dash() -> dict:
    return stack.dashboard()


def test_dashboard_header(dash):
    assert dash["uid"] == "stream-od" and dash["title"]
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    assert "id" not in dash or dash["id"] is None  # provisioned dashboards carry no db id


def test_panels_are_well_formed(dash):
    ids = [p["id"] for p in dash["panels"]] + [
        c["id"] for p in dash["panels"] for c in p.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in stack.dashboard_panels():
        assert p["title"] and p.get("description"), (
            f"panel {p['id']} needs a title and a description"
        )
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert p["targets"] and len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["datasource"] == p["datasource"], p["title"]


def test_layout_has_no_overlaps(dash):
    cells: dict[tuple[int, int], str] = {}
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def test_variables(dash):
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query" and variables[name]["includeAll"]
    for p in stack.dashboard_panels():
        for t in p["targets"]:
            for var in re.findall(r"\$\{?(\w+)", t["expr"]):
                assert var.startswith("__") or var in variables, f"{p['title']}: ${var}"


def panels_querying(pattern: str) -> list[str]:
    return [
        p["title"]
        for p in stack.dashboard_panels()
        if any(re.search(pattern, t["expr"]) for t in p["targets"])
    ]


@pytest.mark.parametrize(
    "what, pattern",
    [
        ("throughput", r"rate\(stream_od_records_(consumed|scored)_total"),
        ("alert rate", r"rate\(stream_od_alerts_total"),
        ("dead-letter rate", r"rate\(stream_od_dead_letters_total"),
        (
            "latency percentiles from the histogram",
            r"histogram_quantile\(0\.99, sum by \(le\) "
            r"\(rate\(stream_od_end_to_end_latency_seconds_bucket",
        ),
        ("batch timing split by stage", r"by \(stage\).*stream_od_batch_stage_seconds_sum"),
        (
            "consumer lag per partition",
            r"by \([^)]*partition[^)]*\) \(stream_od_consumer_lag_records",
        ),
        ("rebalances", r"stream_od_rebalances_total"),
        (
            "the wait to read state back",
            r"by \(state\) \(increase\(stream_od_state_restore_seconds_sum",
        ),
        ("transaction aborts", r"stream_od_transaction_aborts_total"),
        ("model version", r"by \([^)]*version[^)]*\) \(stream_od_model_info"),
        ("model swaps", r"stream_od_model_swaps_total"),
        ("model refusals by reason", r"by \(reason\) \(increase\(stream_od_model_refusals_total"),
    ],
)
def test_required_panels(what, pattern):
    assert panels_querying(pattern), f"no panel shows {what}"


def test_provisioned_datasource_is_prometheus():
    ds = stack.load_yaml(stack.GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"]


def test_refusal_reasons_are_the_codes():
    panel = next(
        p
        for p in stack.dashboard_panels()
        if any("stream_od_model_refusals_total" in t["expr"] for t in p["targets"])
    )
    for reason in REFUSAL_REASONS:
        assert reason in panel["description"], reason
