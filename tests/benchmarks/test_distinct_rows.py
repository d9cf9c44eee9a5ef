"""``benchmarks/distinct_rows.py``: a short run scoring repeated rows once and each time, bits
compared."""

from tests.benchmarks.runner import run_neural_benchmark


def test_a_short_run_times_both_ways_and_finds_the_same_bits(tmp_path):
    proc, result = run_neural_benchmark(
        "distinct_rows.py",
        tmp_path,
        *("--batches", "50", "500", "--count", "2000", "--repeats", "2"),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["batch"] for r in result["rows"]] == [50, 500]
    for row in result["rows"]:
        assert row["identical_bits"] is True
        assert row["records"] == 2000 and row["batches"] == 2000 // row["batch"]
        assert all(len(runs) == 2 for runs in row["runs"].values())
        assert 0 < row["distinct_share_min"] <= row["distinct_share_median"] <= 1
        assert row["once_us_median"] > 0 and row["each_us_median"] > 0
    assert "| 500 |" in proc.stdout
