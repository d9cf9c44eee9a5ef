"""``benchmarks/train_scale.py``: ``stream-od train`` on growing logs, every record kept against
``--max-rows``, with each run's peak memory."""

import json
from pathlib import Path

from tests.benchmarks.runner import run_benchmark

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "logs" / "zeek-conn-labeled.json"


def test_train_scale_runs_each_size_with_and_without_max_rows(tmp_path):
    out = tmp_path / "scale.json"
    proc = run_benchmark(
        "train_scale.py",
        *("--data", str(FIXTURE), "--rows", "1200", "2400", "--max-rows", "0", "1000"),
        *("--detector", "mahalanobis", "--score", "--json", str(out)),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| records in the logs | --max-rows | trained on | peak memory |" in proc.stdout
    result = json.loads(out.read_text())
    runs = result["runs"]
    got = [(r["rows"], r["max_rows"], r["training"]["how"], r["training"]["records"]) for r in runs]
    assert got == [
        (1200, 0, "all", 1200),
        (1200, 1000, "uniform", 1000),
        (2400, 0, "all", 2400),
        (2400, 1000, "uniform", 1000),
    ]
    for r in runs:
        assert r["training"]["of"] == r["rows"]
        assert sum(r["parts"].values()) == r["training"]["records"]  # labels dropped: all normal
        assert r["peak_rss_mb"] > 50 and r["wall_s"] > 0 and 0 <= r["holdout_alert_rate"] < 0.2
        assert f"read {r['rows']:,} records" in r["read_line"]
    assert [(s["rows"], s["records"]) for s in result["scores"]] == [(1200, 1200), (2400, 2400)]
    assert all(s["peak_rss_mb"] > 20 and s["wall_s"] > 0 for s in result["scores"])
    assert "| records in the logs | `score` peak memory | wall |" in proc.stdout
