"""The PromQL and exposition readers the deploy tests rely on, on cases with a known answer."""

from __future__ import annotations

import pytest

from tests.deploy import stack


@pytest.mark.parametrize(
    "expr, names",
    [
        ('rate(a_total{job=~"$job"}[5m])', {"a_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
        (
            "sum(rate(h_sum[1m])) by (stage) / sum by (stage) (rate(h_count[1m]))",
            {"h_sum", "h_count"},
        ),
        ("x > 1e-9 and on (instance) y offset 5m", {"x", "y"}),
        ('max by (instance) (up == 1) unless on (instance) i_info{version!=""}', {"up", "i_info"}),
        ("deriv(sum(lag)[15m:1m]) > 0", {"lag"}),
        ('{__name__="by_name", a="sum(b)"}', {"by_name"}),
        ('absent(up{job="w"} == 1)', {"up"}),
        ("clamp_min(sum(rate(c_total[10m])), 1e-9)", {"c_total"}),
    ],
)
def test_metric_names_of_an_expression(expr, names):
    assert stack.promql_metric_names(expr) == names


def test_unbalanced_expression_is_an_error():
    with pytest.raises(ValueError):
        stack.promql_metric_names("sum(rate(a_total[5m])")


def test_label_names_of_an_expression():
    expr = 'sum by (severity, le) (rate(a{job=~"$job", reason!="x"}[1m])) / on (instance) b'
    assert stack.promql_label_names(expr) == {"severity", "le", "job", "reason", "instance"}


def test_exposition_series_of_each_type():
    text = "\n".join(
        [
            "# TYPE c_total counter",
            "c_total 1.0",
            "# TYPE l_total counter",  # labelled, no child yet: no sample line
            "# TYPE h histogram",
            'h_bucket{le="+Inf"} 0.0',
            "h_count 0.0",
            "h_sum 0.0",
            "# TYPE g gauge",
            "g 1.0",
            "# TYPE m_info gauge",
            "m_info 1.0",
            "# TYPE o info",  # OpenMetrics spelling
            "# TYPE s summary",
        ]
    )
    series = stack.exposition_series(text)
    assert set(series) == {
        "c_total",
        "l_total",
        "h_bucket",
        "h_count",
        "h_sum",
        "g",
        "m_info",
        "o_info",
        "s",
        "s_sum",
        "s_count",
    }
    assert "h" not in series  # a histogram's bare name selects nothing


def test_compose_interpolation():
    doc = {"a": "${X:-1}", "b": ["$$1", "${Y-}", "pre-${X}-post"], "c": 3}
    assert stack.interpolate(doc) == {"a": "1", "b": ["$1", "", "pre--post"], "c": 3}
    assert stack.interpolate(doc, {"X": "7"})["a"] == "7"


def test_created_topics_and_invocations():
    script = (
        'create "$IN" 6\n  create out 3 retention.ms=1\n'
        'stream-od train --data /d \\\n  --out "/m/$v"\n'
    )
    assert stack.created_topics(script, {"IN": "in"}) == {"in": 6, "out": 3}
    assert stack.stream_od_invocations(script) == [["train", "--data", "/d", "--out", "/m/$v"]]


def test_durations():
    assert stack.duration_s("45s") == 45
    assert stack.duration_s("1m30s") == 90
    assert stack.duration_s(60) == 60
    with pytest.raises(AssertionError):
        stack.duration_s("45 seconds")
