"""``benchmarks/bounded_call.py``: a short run times both arms of both stand-ins."""

import json

from tests.benchmarks.runner import run_benchmark


def test_a_short_run_times_direct_and_bounded_calls(tmp_path):
    out = tmp_path / "out.json"
    proc = run_benchmark(
        "bounded_call.py", "--calls", "20", "--repeats", "2", "--json", str(out), timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["per_call_us"]) == {"noop", "sleep_1ms"}
    for row in result["per_call_us"].values():
        assert all(len(runs) == 2 for runs in row["runs"].values())
        assert all(t >= 0 for runs in row["runs"].values() for t in runs)
    assert "| sleep_1ms |" in proc.stdout
