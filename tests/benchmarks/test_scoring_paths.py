"""``benchmarks/scoring_paths.py``: a short run of both scoring paths and the worker's stage."""

from tests.benchmarks.runner import run_neural_benchmark


def test_a_short_run_compares_the_paths_and_the_worker_stage(tmp_path):
    proc, result = run_neural_benchmark(
        "scoring_paths.py",
        tmp_path,
        *("--batches", "1", "300", "--stage-batches", "100", "--seconds", "0.05"),
        *("--repeats", "1"),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["batch"] for r in result["rows"]] == [1, 300]
    assert [r["batch"] for r in result["worker_stage"]] == [100]
    stage = result["worker_stage"][0]
    assert stage["numpy_records_per_s"] > 0 and stage["keras_records_per_s"] > 0
    assert result["keras_backend"] == "tensorflow" and "keras" in result["versions"]
    # float64 on both paths: the same scores far below anything a threshold could see
    assert result["score_difference"]["max_rel_diff"] < 1e-9
    assert result["score_difference"]["decisions_differing"] == 0
    assert "the worker's stage" in proc.stdout
