"""Every metric a dashboard panel or an alert rule queries is one the worker exports.

Checked here against the worker's metrics module rendered in-process (fast, no Kafka), and in
test_live_worker.py against a real scrape of a running worker.
"""

from __future__ import annotations

import pytest

from tests.deploy import stack

ALL_EXPRS = stack.dashboard_exprs() + stack.rule_exprs()


def unknown_names(exprs, series) -> list[str]:
    known = set(series) | stack.PROMETHEUS_BUILTINS
    return [
        f"{where}: {name}"
        for where, expr in exprs
        for name in sorted(stack.promql_metric_names(expr))
        if name not in known
    ]


def test_the_stack_queries_something():
    assert len(stack.dashboard_exprs()) >= 15 and len(stack.rule_exprs()) >= 4


@pytest.mark.parametrize("where, expr", ALL_EXPRS, ids=[w for w, _ in ALL_EXPRS])
def test_each_expression_selects_exported_series(where, expr, worker_series):
    names = stack.promql_metric_names(expr)
    assert names, f"{where}: selects no metric: {expr}"
    missing = names - set(worker_series) - stack.PROMETHEUS_BUILTINS
    assert not missing, (
        f"{where} queries {sorted(missing)}, which the worker does not export "
        f"(exported: {sorted(worker_series)})"
    )


@pytest.mark.parametrize("where, expr", ALL_EXPRS, ids=[w for w, _ in ALL_EXPRS])
def test_each_expression_uses_labels_the_metrics_have(where, expr, worker_label_names):
    unknown = stack.promql_label_names(expr) - worker_label_names
    assert not unknown, f"{where} uses label(s) {sorted(unknown)} no worker metric has: {expr}"


def test_histograms_are_queried_through_their_series(worker_series):
    # histogram_quantile needs _bucket; a bare histogram name would select nothing.
    histograms = {
        n.removesuffix("_bucket")
        for n, k in worker_series.items()
        if k == "histogram" and n.endswith("_bucket")
    }
    for where, expr in ALL_EXPRS:
        for name in stack.promql_metric_names(expr):
            assert name not in histograms, f"{where}: bare histogram name {name}"
        if "histogram_quantile" in expr:
            assert any(n.endswith("_bucket") for n in stack.promql_metric_names(expr)), where


def test_every_exported_metric_is_on_the_dashboard_or_in_a_rule(worker_series):
    used = {n for _, e in ALL_EXPRS for n in stack.promql_metric_names(e)}
    families: dict[str, set[str]] = {}
    for name, kind in worker_series.items():
        base = name
        if kind == "histogram":
            base = name.rsplit("_", 1)[0]
        families.setdefault(base, set()).add(name)
    unused = sorted(f for f, names in families.items() if not names & used)
    assert not unused, f"exported but neither on the dashboard nor in a rule: {unused}"
