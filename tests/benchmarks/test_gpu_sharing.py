"""``benchmarks/gpu_sharing.py`` where there is no GPU: it runs, and says why nothing scored."""

import pytest

from stream_od.detector.device import nvidia_driver_loaded
from tests.benchmarks.runner import run_neural_benchmark


@pytest.mark.skipif(nvidia_driver_loaded(), reason="measures the GPU for real on a GPU machine")
def test_without_a_gpu_each_worker_reports_why(tmp_path):
    proc, result = run_neural_benchmark("gpu_sharing.py", tmp_path, "--workers", "1", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    arms = result["arms"]
    assert len(arms) == 2
    for rows in arms.values():
        assert [r["scored"] for r in rows] == [False]
        assert "scoring_device=gpu, but" in rows[0]["said"]
