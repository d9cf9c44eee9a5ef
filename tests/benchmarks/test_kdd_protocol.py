"""``benchmarks/kdd_protocol.py --quick``: the JSON rows the issue asks for, and sane numbers."""

import json

import pytest

from tests.benchmarks.runner import run_benchmark

FIELDS = {
    "method",
    "seed",
    "f1",
    "precision",
    "recall",
    "auroc",
    "threshold",
    "fit_seconds",
    "corrected_auroc",
    "corrected_f1",
}


@pytest.mark.slow
def test_quick_protocol_run_writes_one_row_per_method_and_seed(
    tmp_path, kdd_train_path, kdd_test_path
):
    out = tmp_path / "kdd.json"
    proc = run_benchmark(
        "kdd_protocol.py",
        "--quick",
        "--json",
        str(out),
        "--methods",
        "vaegmm",
        "mahalanobis",
        "--train-data",
        str(kdd_train_path),
        "--corrected-data",
        str(kdd_test_path),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["method"], r["seed"]) for r in rows] == [
        ("vaegmm", 0),
        ("vaegmm-netmix", 0),
        ("mahalanobis", 0),
    ]
    for r in rows:
        assert FIELDS - {"fit_seconds"} <= set(r), r.keys()
    by = {r["method"]: r for r in rows}
    assert FIELDS <= set(by["vaegmm"]) and FIELDS <= set(by["mahalanobis"])
    assert (
        by["vaegmm"]["mixture_components"] == 12 and by["vaegmm-netmix"]["mixture_components"] == 2
    )
    # the baseline is deterministic: it reaches its known quality on the protocol's batches
    assert by["mahalanobis"]["f1"] > 0.95 and by["mahalanobis"]["auroc"] > 0.99
    assert 0.9 < by["mahalanobis"]["corrected_auroc"] < 1.0
    # two epochs on 20,000 rows still separate the test batch
    assert by["vaegmm"]["auroc"] > 0.9
    assert "median" in proc.stdout and "worst" in proc.stdout
