"""``benchmarks/gpu_sharing.py`` where there is no GPU: it runs, and says why nothing scored."""

import json

import pytest

from stream_od.detector.device import nvidia_driver_loaded
from tests.benchmarks.runner import run_benchmark


@pytest.mark.skipif(nvidia_driver_loaded(), reason="measures the GPU for real on a GPU machine")
def test_without_a_gpu_each_worker_reports_why(tmp_path):
    from importlib import resources

    from trainer.fit import TrainConfig, train

    sample = resources.files("stream_od.data").joinpath("kdd_sample.csv.gz")
    art = train(
        TrainConfig(data=str(sample), detector="vaegmm", n_train=2_000, epochs=1),
        progress=False,
    )
    path = art.save(tmp_path / "vaegmm")
    out = tmp_path / "sharing.json"
    proc = run_benchmark(
        "gpu_sharing.py",
        *("--artifact", str(path), "--data", str(sample), "--workers", "1"),
        *("--json", str(out)),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    arms = json.loads(out.read_text())["arms"]
    assert len(arms) == 2
    for rows in arms.values():
        assert [r["scored"] for r in rows] == [False]
        assert "scoring_device=gpu, but" in rows[0]["said"]
