"""The project's broker script on a second, private broker: up, status, down.  Its secured mode
runs in tests/integration/secured/ (the session's secured broker is started with it).

``up`` used to read the pid file's /proc cmdline while the child had not exec'd the JVM yet and
call a starting broker dead; now the process writes its own pid and then becomes the JVM, and
only a process that is gone counts as exited.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.worker_support import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "kafka.sh"


@pytest.mark.slow
def test_up_status_down_on_a_private_broker(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "STREAM_OD_KAFKA_DIR": str(tmp_path / "kafka"),
        "STREAM_OD_KAFKA_PORT": str(port),
        "PYTHON": sys.executable,
        "KAFKA_GC_OPTS": "-XX:+UseSerialGC",  # benchmarks/broker_gc.py sets it per arm
    }

    def script(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=240
        )

    try:
        up = script("up")
        assert up.returncode == 0, up.stderr
        assert f"ready on 127.0.0.1:{port}" in up.stderr
        pid = (tmp_path / "kafka" / "kafka.pid").read_text().strip()
        cmdline = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        assert "kafka.Kafka" in cmdline
        assert "-XX:+UseSerialGC" in cmdline and "-XX:+UseG1GC" not in cmdline
        assert script("status").returncode == 0
        again = script("up")  # idempotent: finds the running broker
        assert again.returncode == 0 and "already running" in again.stderr
    finally:
        down = script("down", "--wipe")
    assert down.returncode == 0, down.stderr
    assert script("status").returncode == 1
    assert not (tmp_path / "kafka").exists()


@pytest.mark.parametrize(
    "args", [["up", "--wipe"], ["up", "--secure"], ["status", "extra"], ["restart"], []]
)
def test_unknown_arguments_get_the_usage_and_touch_nothing(tmp_path, args):
    env = {**os.environ, "STREAM_OD_KAFKA_DIR": str(tmp_path / "kafka")}
    run = subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2 and "usage:" in run.stderr and "--secured" in run.stderr
    assert not (tmp_path / "kafka").exists()
