"""Run a script of ``benchmarks/`` as a user would: its own process, its output captured."""

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

from tests.worker_support import run_process_tree

REPO = Path(__file__).resolve().parents[2]
# The KDD sample shipped in the package: a benchmark's test needs no ../shared.
KDD_SAMPLE = resources.files("stream_od.data").joinpath("kdd_sample.csv.gz")


def run_benchmark(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """``python benchmarks/<script> <args>``, stdout and stderr as text, killed after
    ``timeout`` seconds with every process it started (a benchmark that hangs fails its test
    instead of stalling CI)."""
    return run_process_tree([sys.executable, str(REPO / "benchmarks" / script), *args], timeout)


def run_stream_benchmark(
    script: str, tmp_path: Path, bootstrap: str, kdd_path: Path, *args: str, timeout: float
) -> subprocess.CompletedProcess:
    """A streaming benchmark on the real broker with a small Mahalanobis artifact trained on
    ``kdd_path`` (its ``--artifact``, ``--data`` and ``--bootstrap``), then ``args``."""
    from tests.integration.conftest import train_mahalanobis

    _, artifact = train_mahalanobis(kdd_path, 20_000, tmp_path / "artifact")
    return run_benchmark(
        script,
        *("--artifact", str(artifact), "--data", str(kdd_path), "--bootstrap", bootstrap),
        *args,
        timeout=timeout,
    )


def run_neural_benchmark(
    script: str, tmp_path: Path, *args: str, timeout: float
) -> tuple[subprocess.CompletedProcess, dict]:
    """A scoring benchmark with a VAEGMM trained for one epoch on 2,000 rows of the packaged
    KDD sample (a neural model for the benchmark's code paths, not for its figures) as its
    ``--artifact``, that sample as its ``--data``, then ``args``; returns the process and the
    JSON it wrote (``{}`` when it wrote none)."""
    from trainer.fit import TrainConfig, train

    config = TrainConfig(data=str(KDD_SAMPLE), detector="vaegmm", n_train=2_000, epochs=1)
    artifact = train(config, progress=False).save(tmp_path / "vaegmm")
    out = tmp_path / "result.json"
    proc = run_benchmark(
        script,
        *("--artifact", str(artifact), "--data", str(KDD_SAMPLE), "--json", str(out)),
        *args,
        timeout=timeout,
    )
    return proc, json.loads(out.read_text()) if out.exists() else {}
