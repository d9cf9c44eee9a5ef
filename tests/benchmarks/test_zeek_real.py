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
