"""``benchmarks/txn_backoff.py`` on the real broker: every arm runs and is reported."""

import json

from tests.benchmarks.runner import run_benchmark


def test_each_backoff_and_pause_is_measured_and_written(tmp_path, kafka_bootstrap):
    out = tmp_path / "txn.json"
    proc = run_benchmark(
        "txn_backoff.py",
        "--bootstrap",
        kafka_bootstrap,
        "--backoffs",
        "100",
        "10",
        "--pauses-ms",
        "0",
        "5",
        "--transactions",
        "4",
        "--repeats",
        "1",
        "--json",
        str(out),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(r["retry_backoff_ms"], r["pause_ms"]) for r in rows] == [
        (100, 0),
        (10, 0),
        (100, 5),
        (10, 5),
    ]
    for r in rows:
        assert len(r["runs"]) == 1 and 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert 0 <= r["over_50ms"] <= 4
    assert "| 0 ms | 100 |" in proc.stdout and "| 5 ms | 10 |" in proc.stdout
