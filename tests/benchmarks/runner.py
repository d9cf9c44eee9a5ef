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
