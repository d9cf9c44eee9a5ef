"""``benchmarks/contributions.py``: a short run of the contributions before and now, bits
compared."""

from tests.benchmarks.runner import run_neural_benchmark


def test_a_short_run_times_both_ways_and_finds_the_same_bits(tmp_path):
    proc, result = run_neural_benchmark(
        "contributions.py",
        tmp_path,
        *("--batches", "3", "600", "--seconds", "0.02", "--repeats", "2"),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["batch"] for r in result["rows"]] == [3, 600]
    for row in result["rows"]:
        assert row["identical_bits"] is True
        assert all(len(runs) == 2 for runs in row["runs"].values())
        assert row["before_step_median"] > 0 and row["now_rows_median"] > 0
    assert "| 600 |" in proc.stdout
