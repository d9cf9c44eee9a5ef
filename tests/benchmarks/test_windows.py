"""``benchmarks/windows.py``: both schemas side by side for each method, the KDD comparison, and
the cost figures, with the fields docs/windows.md reads."""

import json
from pathlib import Path

import pytest

from tests.benchmarks.runner import run_benchmark

REPO = Path(__file__).resolve().parents[2]
ZEEK = REPO.parent / "shared" / "data" / "zeek"


@pytest.mark.slow
def test_quick_run_compares_both_schemas_and_measures_the_cost(
    tmp_path, kdd_train_path, kdd_test_path
):
    if not (ZEEK / "008-zeek-mixed.conn.log.labeled").exists():
        pytest.skip(f"Zeek captures not found in {ZEEK}")
    out = tmp_path / "windows.json"
    proc = run_benchmark(
        "windows.py",
        "--quick",
        "--json",
        str(out),
        "--methods",
        "mahalanobis",
        "--kdd",
        "--kdd-train-data",
        str(kdd_train_path),
        "--kdd-corrected-data",
        str(kdd_test_path),
        "--repeats",
        "1",
        "--memory-keys",
        "200",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(out.read_text())
    zeek = got["detection"]["zeek"]
    assert set(zeek) == {"zeek-conn", "zeek-conn-windows"}
    assert zeek["zeek-conn-windows"]["n_features"] == zeek["zeek-conn"]["n_features"] + 20
    for res in zeek.values():
        (row,) = res["rows"]
        assert 0.5 < row["test_roc_auc"] <= 1.0 and 0 <= row["test_alert_rate"] <= 1
    kdd = got["detection"]["kdd"]
    assert set(kdd) == {"kdd99-full", "kdd99-full-no-traffic"}
    assert all(0.5 < res["rows"][0]["corrected_roc_auc"] <= 1 for res in kdd.values())
    cost = got["cost"]
    assert set(cost["median_records_per_s"]) == {"zeek-conn", "zeek-conn-windows"}
    assert cost["memory"]["connections_per_key"] == 100 and cost["memory"]["bytes"] > 0
    assert "zeek-conn-windows" in proc.stdout and "per 100,000 active keys" in proc.stdout
