"""deploy/prometheus: the scrape config and the alerting rules the issue asks for."""

from __future__ import annotations

import re

from stream_od.registry.errors import REFUSAL_REASONS
from tests.deploy import stack


def test_scrape_config_parses():
    prom = stack.load_yaml(stack.PROMETHEUS / "prometheus.yml")
    jobs = [j["job_name"] for j in prom["scrape_configs"]]
    assert len(jobs) == len(set(jobs))
    assert stack.WORKER_JOB in jobs
    assert stack.duration_s(prom["global"]["scrape_interval"]) <= 30


def test_rules_are_complete():
    rules = stack.alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    # The four: worker down, lag growing, dead-letter rate high, no model loaded.
    assert {
        "StreamOdWorkerDown",
        "StreamOdConsumerLagGrowing",
        "StreamOdDeadLetterRateHigh",
        "StreamOdNoModelLoaded",
    } <= set(names)
    # The model registry: a refused model, and workers left on different versions.
    assert {"StreamOdModelRefused", "StreamOdModelVersionsDiffer"} <= set(names)
    for r in rules:
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
        if "for" in r:
            stack.duration_s(r["for"])


def test_rules_select_the_worker_job():
    # Rules name the scrape job; compose's prometheus.yml and the PodMonitor both call it so.
    for where, expr in stack.rule_exprs():
        jobs = set(re.findall(r'job\s*=\s*"([^"]+)"', expr))
        assert jobs == {stack.WORKER_JOB}, f"{where}: job matchers {jobs}"


def test_annotations_use_only_labels_the_expression_keeps():
    for r in stack.alert_rules():
        used = set(re.findall(r"\$labels\.(\w+)", str(r["annotations"])))
        grouping = stack.promql_label_names(r["expr"])
        aggregated = re.search(r"\b(sum|max|min|avg|count)\b", r["expr"])
        if aggregated and used:
            assert used <= grouping, f"{r['alert']}: {used} not kept by {r['expr']}"


def test_refusal_alert_fires_per_worker_and_reason():
    rule = next(r for r in stack.alert_rules() if r["alert"] == "StreamOdModelRefused")
    assert "stream_od_model_refusals_total" in rule["expr"]
    assert {"instance", "reason"} <= stack.promql_label_names(rule["expr"])
    assert "for" not in rule, "one refusal is worth a look at once"
    for reason in REFUSAL_REASONS:
        assert reason in rule["annotations"]["description"], reason
