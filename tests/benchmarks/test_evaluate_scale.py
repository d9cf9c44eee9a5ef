"""``benchmarks/evaluate_scale.py``: ``stream-od evaluate`` and ``score`` of a baseline commit
and of this tree on the same growing labelled logs, each run's peak memory, and whether their
outputs agree."""

import json
from pathlib import Path

from tests.benchmarks.runner import run_benchmark

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "logs" / "zeek-conn-labeled.json"


def test_evaluate_scale_runs_the_baseline_and_this_tree_on_each_size(tmp_path):
    from benchmarks.train_scale import write_week

    train = tmp_path / "train.json"  # the fixture's 13 benign rows, 25 times over
    write_week([str(FIXTURE)], 1000, train, labels=True)
    out = tmp_path / "scale.json"
    proc = run_benchmark(
        "evaluate_scale.py",
        *("--data", str(FIXTURE), "--rows", "1500", "3000", "--baseline", "HEAD"),
        *("--train-data", str(train), "--detector", "mahalanobis", "--json", str(out)),
        "--score",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| records | command | code | peak memory | wall | outputs agree |" in proc.stdout
    results = json.loads(out.read_text())["results"]
    assert [(r["rows"], r["command"]) for r in results] == [
        (1500, "evaluate"),
        (1500, "score"),
        (3000, "evaluate"),
        (3000, "score"),
    ]
    for r in results:
        assert list(r["runs"]) == ["HEAD", "this tree"] and r["reports_agree"]
        for run in r["runs"].values():
            assert run["peak_rss_mb"] > 20 and run["wall_s"] > 0
            report = run["report"]
            if r["command"] == "score":
                assert report["records"] == r["rows"] and len(report["sha256"]) == 64
            else:
                assert report["n_records"] == r["rows"]
                assert report["n_normal"] > 0 and report["n_malicious"] > 0


def test_evaluate_scale_replays_each_log_from_both_trees_to_the_broker(tmp_path, kafka_bootstrap):
    from benchmarks.train_scale import write_week

    train = tmp_path / "train.json"
    write_week([str(FIXTURE)], 1000, train, labels=True)
    out = tmp_path / "scale.json"
    proc = run_benchmark(
        "evaluate_scale.py",
        *("--data", str(FIXTURE), "--rows", "1200", "--baseline", "HEAD"),
        *("--train-data", str(train), "--detector", "mahalanobis", "--json", str(out)),
        *("--replay", "--bootstrap", kafka_bootstrap),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert [(r["rows"], r["command"]) for r in results] == [(1200, "evaluate"), (1200, "replay")]
    replayed = results[1]
    assert replayed["reports_agree"]
    for run in replayed["runs"].values():
        assert run["report"]["records"] == 1200 and len(run["report"]["sha256"]) == 64
