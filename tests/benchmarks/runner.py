"""Run a script of ``benchmarks/`` as a user would: its own process, its output captured."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """``python benchmarks/<script> <args>``, stdout and stderr as text, killed after
    ``timeout`` seconds (a benchmark that hangs fails its test instead of stalling CI)."""
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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
