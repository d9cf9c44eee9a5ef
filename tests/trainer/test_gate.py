"""The quality gate: which floors a trained model falls below (pure logic, no training)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from trainer.gate import failures, gate_failures, report


def args(min_auroc=None, min_f1=None, max_alert_rate=None):
    return argparse.Namespace(min_auroc=min_auroc, min_f1=min_f1, max_alert_rate=max_alert_rate)


def kdd_model(**test_batch):
    return SimpleNamespace(version="v1", metrics={"test_batch": test_batch})


def site_model(**holdout):
    return SimpleNamespace(
        version="v1", metrics={"holdout": {"target_alert_rate": 0.01, **holdout}}
    )


@pytest.mark.parametrize("floors, below", [((0.9, 0.5), []), ((0.99, 0.95), ["auroc", "f1"])])
def test_gate_failures(floors, below):
    got = gate_failures({"auroc": 0.95, "f1": 0.9}, min_auroc=floors[0], min_f1=floors[1])
    assert [g.split()[0] for g in got] == below


def test_a_missing_or_nan_figure_fails_its_floor():
    assert gate_failures({"auroc": float("nan")}, min_auroc=0.1, min_f1=None)
    assert gate_failures({}, min_auroc=None, min_f1=0.1) == ["f1 nan < 0.1"]


def test_kdd_models_are_gated_on_the_test_batch():
    assert failures(args(min_auroc=0.9), kdd_model(auroc=0.95, f1=0.5)) == []
    assert failures(args(min_f1=0.8), kdd_model(auroc=0.95, f1=0.5)) == ["f1 0.5000 < 0.8"]


def test_site_models_are_gated_on_the_held_out_alert_rate_at_twice_the_target_by_default():
    assert failures(args(), site_model(alert_rate=0.02)) == []
    (below,) = failures(args(), site_model(alert_rate=0.021))
    assert below.startswith("held-out alert rate 0.0210 > 0.0200")
    assert failures(args(max_alert_rate=0.05), site_model(alert_rate=0.04)) == []


def test_site_models_without_labels_cannot_pass_a_labelled_floor():
    below = failures(args(min_auroc=0.9), site_model(alert_rate=0.01))
    assert "no labelled malicious rows to measure --min-auroc/--min-f1 on" in below
    assert failures(args(min_auroc=0.9), site_model(alert_rate=0.01, auroc=0.95)) == []


def test_report_names_what_failed(capsys):
    report(site_model(alert_rate=0.03, auroc=0.9), ["held-out alert rate 0.0300 > 0.0200"])
    err = capsys.readouterr().err
    assert (
        '"quality_gate": "failed"' in err and '"holdout": {"auroc": 0.9, "alert_rate": 0.03}' in err
    )
    assert "nothing published" in err
