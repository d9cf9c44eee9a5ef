import json

from tests.benchmarks.runner import run_benchmark


def test_a_short_run_reads_the_same_state_three_ways(tmp_path, kafka_bootstrap):
    out = tmp_path / "restore.json"
    proc = run_benchmark(
        "changelog_restore.py",
        *("--bootstrap", kafka_bootstrap, "--partitions", "2", "--windows", "5"),
        *("--repeats", "2", "--json", str(out)),
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr  # the script checks every way read the same
    (result,) = json.loads(out.read_text())["results"]
    assert result["partitions"] == 2 and result["entries_per_partition"] == 7
    assert all(len(runs) == 2 for runs in result["runs"].values()) and len(result["runs"]) == 3
    assert "| 2 |" in proc.stdout
