"""``benchmarks/zeek_later_hours.py``: a capture cut in time, trained on its first part and
tested on the rest, with the later part's benign alert rate overall and hour by hour."""

import json
from pathlib import Path

import pytest

from tests.benchmarks.runner import run_benchmark

REPO = Path(__file__).resolve().parents[2]
ZEEK = REPO.parent / "shared" / "data" / "zeek"
CONTROL = ZEEK / "idps-ctu-sme-11-2023-02-20.conn.log.labeled"
NJRAT = ZEEK / "001-zeek-scenario-malicious.labeled-conn.log"


def labels_in_order(path: Path) -> list[str]:
    """The label column, in time order, read without the product's readers."""
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            names = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            cells = dict(zip(names, line.split("\t")))
            rows.append((float(cells["ts"]), cells["label"]))
    return [label for _, label in sorted(rows, key=lambda r: r[0])]


def run(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "later.json"
    proc = run_benchmark("zeek_later_hours.py", "--quick", "--json", str(out), *args, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "benign alert rate by hour" in proc.stdout
    return json.loads(out.read_text())


@pytest.mark.slow
def test_control_capture_gives_the_later_benign_alert_rate_by_hour(tmp_path):
    if not CONTROL.exists():
        pytest.skip(f"{CONTROL} not found")
    plot = tmp_path / "later.png"
    result = run(tmp_path, "--data", str(CONTROL), "--plot", str(plot))
    labels = labels_in_order(CONTROL)
    half = round(len(labels) / 2)
    assert (result["rows_earlier"], result["rows_later"]) == (half, len(labels) - half)
    later_benign = labels[half:].count("Benign")
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == ["vaegmm", "aegmm", "mahalanobis", "iforest"]
    for r in rows.values():
        assert r["test_n_normal"] == later_benign and r["test_n_malicious"] == 0
        assert r["test_roc_auc"] is None and r["test_recall"] is None
        lo, hi = r["test_alert_rate_interval"]
        assert lo <= r["test_alert_rate"] <= hi
        by_hour = r["test_alert_rate_by_hour"]
        assert sum(h["n"] for h in by_hour) == later_benign
        alerts = sum(h["n"] * h["alert_rate"] for h in by_hour)
        assert alerts == pytest.approx(r["test_alert_rate"] * later_benign)
    assert set(result["hours_later"]) == set(rows)
    unseen = result["unseen_share"]
    fields = {"proto", "service", "conn_state", "history", "id.resp_p"}
    assert set(unseen["training_held_out"]) == set(unseen["test_normal"]) == fields
    assert all(0.0 <= v <= 1.0 for part in unseen.values() for v in part.values())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_unlabelled_training_takes_every_earlier_row_as_normal(tmp_path):
    if not NJRAT.exists():
        pytest.skip(f"{NJRAT} not found")
    result = run(tmp_path, "--data", str(NJRAT), "--unlabelled", "--methods", "mahalanobis")
    labels = labels_in_order(NJRAT)
    half = round(len(labels) / 2)
    (row,) = result["rows"]
    # labels dropped: the validation part is 15 % of *all* earlier rows, malicious ones included
    assert row["holdout_n_malicious"] == 0
    assert row["holdout_n_normal"] == pytest.approx(0.15 * half, abs=2)
    # the later part is graded by its labels (Background is unlabelled, left out)
    assert row["test_n_malicious"] == labels[half:].count("Malicious")
    assert row["test_n_normal"] == labels[half:].count("Benign")
    assert 0.0 <= row["test_roc_auc"] <= 1.0
