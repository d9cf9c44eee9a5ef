"""``benchmarks/forward_sums.py``: a short run of both ways of the exact sums, bits compared."""

from tests.benchmarks.runner import run_neural_benchmark


def test_a_short_run_times_both_ways_and_finds_the_same_bits(tmp_path):
    proc, result = run_neural_benchmark(
        "forward_sums.py",
        tmp_path,
        *("--batches", "3", "600", "--seconds", "0.05", "--repeats", "2"),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["batch"] for r in result["rows"]] == [3, 600]
    for row in result["rows"]:
        assert row["identical_bits"] is True
        assert all(len(runs) == 2 for runs in row["runs"].values())
        assert row["einsum_stage_per_s"] > 0 and row["elementwise_rows_per_s"] > 0
    assert result["einsum_in_order"] is True
    assert "| 600 |" in proc.stdout
