"""Alerts about real records, in every format, pass the maintained schema checks.

The format tests use hand-made facts; these build the facts the way the worker does
(``AlertPolicy.facts`` on decoded records, suppression for the summaries) from the project's
fixtures: Zeek's JSON writer (a labelled conn log), Suricata EVE (every event type in the
fixture, not only flows), KDD CSV lines, and records that try to break the promotion (an
address that is no address, a port out of range, a huge integer).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson
import pytest

from stream_od.alerts import AlertPolicy, Origin
from stream_od.alerts.suppression import PartitionSuppression
from stream_od.records import csv_fields
from stream_od.schema import load_schema
from tests.alerts import ecs_fields
from tests.alerts.test_ecs import ecs_problems
from tests.alerts.test_ocsf import lost, parse

FIXTURES = Path(__file__).parents[1] / "fixtures"


def json_lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def records(kind: str) -> list[dict]:
    if kind == "zeek-conn":
        return json_lines(FIXTURES / "logs" / "zeek-conn-labeled.json")
    if kind == "suricata-flow":
        hostile = {
            "timestamp": "not a time",
            "src_ip": "999.1.1.1",
            "src_port": 70_000,
            "dest_ip": "10.0.0.1",
            "dest_port": "80",
            "proto": 6,
            "flow_id": 2**70,
            "flow": {"start": None},
        }
        return [*json_lines(FIXTURES / "logs" / "suricata-eve.json"), hostile]
    with gzip.open(FIXTURES / "kdd_sample.csv.gz", "rb") as fh:
        return [csv_fields(line) for line in fh.read().splitlines()[:200]]


def alerts_of(kind: str, fmt: str) -> list[dict]:
    recs = records(kind)
    policy = AlertPolicy(
        feature_names=("a", "b"),
        threshold=1.0,
        score_scale=1.0,
        model_version="m-1",
        detector="vaegmm",
        severity_margins=(0.5, 2.0, 8.0),
        top_k=2,
        schema=load_schema(kind),
        alert_format=fmt,
    )
    n = len(recs)
    rng = np.random.default_rng(0)
    facts = policy.facts(
        [Origin("in", 0, i, 1_796_220_000_000 + i, None) for i in range(n)],
        recs,
        1.0 + rng.exponential(4.0, n),
        rng.normal(size=(n, 2)),
        rng.exponential(size=(n, 2)),
        1_796_220_005_000,
    )
    state = PartitionSuppression(1.0, ("source_ip",), "vaegmm")
    summaries = []
    for a in facts:
        summaries += state.admit(a)[1]
    summaries += state.advance(max(a.event_time_ms for a in facts) + 10_000)
    summaries = policy.finish_summaries(summaries, 1_796_220_006_000)
    assert summaries, "the fixture should repeat a source within a second"
    return [orjson.loads(policy.render(a)) for a in [*facts, *summaries]]


KINDS = ("zeek-conn", "suricata-flow", "kdd99")


@pytest.mark.parametrize("kind", KINDS)
def test_ecs_alerts_of_real_records_are_ecs(kind):
    _, fields = ecs_fields.load()
    for doc in alerts_of(kind, "ecs"):
        assert ecs_problems(doc, fields) == [], doc


@pytest.mark.parametrize("kind", KINDS)
def test_ocsf_alerts_of_real_records_are_detection_findings(kind):
    for doc in alerts_of(kind, "ocsf"):
        parse(doc)
        assert lost(doc) == {}, doc


def test_promotion_left_out_what_an_index_would_refuse():
    docs = [
        d
        for d in alerts_of("suricata-flow", "ecs")
        if d.get("stream_od", {}).get("record", {}).get("src_ip") == "999.1.1.1"
    ]
    assert len(docs) == 1
    doc = docs[0]
    assert "source" not in doc  # neither the address nor the port 70000
    assert doc["destination"] == {"ip": "10.0.0.1", "port": 80}
    assert doc["network"]["transport"] == "tcp"
    assert doc["stream_od"]["event_time_source"] == "kafka"  # "not a time"
    assert doc["stream_od"]["record"]["flow_id"] == str(2**70)  # past 64 bits: as text
