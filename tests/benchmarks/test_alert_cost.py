import json

from tests.benchmarks.runner import REPO, run_benchmark

FIXTURE = REPO / "tests" / "fixtures" / "logs" / "zeek-conn-labeled.log"


def test_a_short_run_times_suppression_both_ways_on_retimed_records(tmp_path):
    out = tmp_path / "alert_cost.json"
    proc = run_benchmark(
        "alert_cost.py",
        *("--data", str(FIXTURE), "--repeats", "2", "--event-rate", "1000"),
        *("--suppress-by", "destination_ip", "--json", str(out)),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["event_rate"] == 1000 and report["suppress_by"] == ["destination_ip"]
    # 40 records in 40 ms: a destination's second alert on is held back in its 60 s window
    assert 0 < report["suppressed_share"] < 1
    for variant in ("native", "ecs", "ocsf", "native+suppress", "native+suppress, built first"):
        assert len(report["runs_us_per_alert"][variant]) == 2
        assert report["us_per_alert"][variant] > 0
    assert "| native+suppress |" in proc.stdout
