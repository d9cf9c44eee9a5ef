"""``benchmarks/broker_gc.py``: one short arm on a private broker of the project's script, so the
session's broker is never restarted.  The benchmark itself checks that each restart runs the
arm's collector and heap; here, that it measured, and that it leaves the broker up with the
shipped settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.runner import REPO, run_benchmark
from tests.integration.conftest import train_mahalanobis
from tests.worker_support import free_port

SCRIPT = REPO / "deploy" / "kafka" / "kafka.sh"


@pytest.mark.slow
def test_one_arm_on_a_private_broker(tmp_path, monkeypatch, kdd_train_path):
    monkeypatch.setenv("STREAM_OD_KAFKA_DIR", str(tmp_path / "kafka"))
    monkeypatch.setenv("STREAM_OD_KAFKA_PORT", str(free_port()))
    monkeypatch.setenv("PYTHON", sys.executable)
    _, artifact = train_mahalanobis(kdd_train_path, 20_000, tmp_path / "artifact")
    out = tmp_path / "gc.json"
    try:
        proc = run_benchmark(
            "broker_gc.py",
            *("--artifact", str(artifact), "--data", str(kdd_train_path), "--count", "5000"),
            *("--rate", "500", "--arms", "kafka-scripts", "--repeats", "1"),
            *("--latency-seconds", "2", "--broker-warmup-seconds", "1", "--json", str(out)),
            timeout=400,
        )
        assert proc.returncode == 0, proc.stderr
        pid = (tmp_path / "kafka" / "kafka.pid").read_text().strip()
        argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        assert "-XX:MaxGCPauseMillis=20" in argv and "-Xms1G" not in argv  # shipped again
    finally:
        subprocess.run(["bash", str(SCRIPT), "down"], env=dict(os.environ), check=False)
    arm = json.loads(out.read_text())["arms"]["kafka-scripts"]
    assert "-XX:InitiatingHeapOccupancyPercent=35" in arm["gc_opts"]
    assert arm["heap_opts"] == "-Xmx1G -Xms1G"
    (run,) = arm["runs"]
    assert run["latency_records"] == 1_000  # 2 s at 500 records/s, after the warm-up
    assert arm["latency_p99_ms"] > 0
    assert (
        "| kafka-scripts (`-XX:+UseG1GC" in proc.stdout and "heap -Xmx1G -Xms1G) |" in proc.stdout
    )
