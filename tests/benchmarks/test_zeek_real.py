"""``benchmarks/zeek_real.py --quick --kdd``: every method and field the issue asks for, and the
deterministic baseline's known quality on the later Zeek day."""

import json
from pathlib import Path

import pytest

from tests.benchmarks.runner import run_benchmark

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
ZEEK_TRAIN = DATA / "zeek" / "008-zeek-mixed.conn.log.labeled"
ZEEK_TEST = DATA / "zeek" / "010-zeek-mixed.conn.log.labeled"
ZEEK_FIELDS = {
    "method",
    "seed",
    "fit_seconds",
    "threshold",
    "test_roc_auc",
    "test_pr_auc",
    "test_alert_rate",
    "test_recall",
    "holdout_roc_auc",
    "holdout_pr_auc",
    "holdout_alert_rate",
    "holdout_recall",
}
KDD_FIELDS = {
    "method",
    "seed",
    "fit_seconds",
    "test_f1",
    "test_roc_auc",
    "corrected_roc_auc",
    "corrected_recall",
    "corrected_recall_1pct",
    "corrected_alert_rate_1pct",
}


@pytest.mark.slow
def test_quick_run_writes_every_method_and_field(tmp_path, kdd_train_path, kdd_test_path):
    if not (ZEEK_TRAIN.exists() and ZEEK_TEST.exists()):
        pytest.skip(f"Zeek captures not found in {ZEEK_TRAIN.parent}")
    out = tmp_path / "zeek.json"
    proc = run_benchmark(
        "zeek_real.py",
        "--quick",
        "--kdd",
        "--json",
        str(out),
        "--train",
        str(ZEEK_TRAIN),
        "--test",
        str(ZEEK_TEST),
        "--kdd-train-data",
        str(kdd_train_path),
        "--kdd-corrected-data",
        str(kdd_test_path),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())

    zeek = {r["method"]: r for r in result["zeek"]["rows"]}
    assert list(zeek) == ["vaegmm", "aegmm", "mahalanobis", "iforest"]
    assert [r["seed"] for r in result["zeek"]["rows"]] == [0, 0, 0, 0]
    for r in zeek.values():
        assert ZEEK_FIELDS <= set(r), ZEEK_FIELDS - set(r)
        for key in ZEEK_FIELDS - {"method", "seed", "fit_seconds", "threshold"}:
            assert 0.0 <= r[key] <= 1.0, (r["method"], key, r[key])
        # the product's split: 70/15/15 of 008's benign rows by time, all its malicious rows
        assert r["holdout_n_normal"] == 211 and r["holdout_n_malicious"] == 4201
        assert r["test_n_normal"] == 1937 and r["test_n_malicious"] == 3373
    assert zeek["vaegmm"]["mixture_components"] == 12 and zeek["vaegmm"]["epochs"] == 5
    # 010's benign rows bring Zeek histories 008's fit rows never had (measured 86 % vs 31 %)
    unseen = result["zeek"]["unseen_share"]
    assert unseen["test_normal"]["history"] > unseen["training_held_out"]["history"] + 0.2
    # Mahalanobis is deterministic: measured test ROC AUC 0.9964, holdout 1.0
    assert zeek["mahalanobis"]["test_roc_auc"] > 0.99
    assert zeek["mahalanobis"]["holdout_roc_auc"] > 0.99

    kdd = {r["method"]: r for r in result["kdd"]["rows"]}
    assert list(kdd) == ["vaegmm", "aegmm", "mahalanobis"]
    for r in kdd.values():
        assert KDD_FIELDS <= set(r), KDD_FIELDS - set(r)
        assert r["n_features"] > 41  # kdd99-full: the categoricals one-hot
    # deterministic: measured test ROC AUC 0.988, corrected 0.978 (20,000 training rows)
    assert kdd["mahalanobis"]["test_roc_auc"] > 0.97
    assert kdd["mahalanobis"]["corrected_roc_auc"] > 0.95
    assert "median" in proc.stdout and "worst" in proc.stdout


def test_history_letters_replace_the_history_field_with_one_boolean_per_letter(tmp_path):
    """``--history-letters`` (an experiment of docs/zeek-results.md): the schema reads one
    boolean per Zeek history letter instead of the whole string, and the records carry them."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("zeek_real", REPO / "benchmarks" / "zeek_real.py")
    zr = importlib.util.module_from_spec(spec)
    sys.modules["zeek_real"] = zr
    spec.loader.exec_module(zr)
    from stream_od.schema import load_schema

    schema = load_schema(zr.schema_with_history_letters("zeek-conn", tmp_path))
    base = load_schema("zeek-conn")
    names = [f.name for f in schema.fields]
    assert "history" not in names and len(names) == len(base.fields) - 1 + 25
    letters = [f for f in schema.fields if f.name.startswith("hist_")]
    assert all(f.kind == "boolean" and f.default is False for f in letters)
    rows = zr.with_history_letters([{"history": "ShADadFf"}, {"proto": "icmp"}])
    assert rows[0]["hist_up_s"] and rows[0]["hist_lo_h"] and rows[0]["hist_lo_f"]
    assert rows[0]["hist_up_h"] is False and not rows[0]["hist_flip"]
    assert rows[1] == {"proto": "icmp"}  # no history: no letter
