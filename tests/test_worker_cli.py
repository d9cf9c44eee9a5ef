"""``stream-od worker``'s stop: bounded by ``shutdown_grace_s`` whatever the process is stuck in."""

from __future__ import annotations

import subprocess
import sys

import pytest

STUCK = """
import re
from stream_od import worker_cli

worker_cli.BACKSTOP_S = 0.5
# The timer's give-up does nothing here, so only the backstop can end the process.
worker_cli.arm_grace(0.5, lambda: None)
re.match(r"(a+)+$", "a" * 64 + "b")  # catastrophic backtracking: holds the GIL for ages
print("finished")
"""


def test_the_grace_ends_a_process_whose_interpreter_is_stuck():
    """A timer thread cannot run while a C call holds the GIL (seen once in CI: a worker
    silent after a revoke, past its grace); faulthandler's watchdog can.  It exits with 1 and
    writes where every thread was."""
    proc = subprocess.run(
        [sys.executable, "-c", STUCK], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    assert "finished" not in proc.stdout
    assert "Timeout" in proc.stderr and 'File "<string>", line 8' in proc.stderr, proc.stderr


# -- start-up errors: exit code 2 and one line that says what to fix, never a traceback -------


def _run_worker(monkeypatch, capsys, *, config=None, artifact="unused"):
    import argparse

    from stream_od import worker_cli

    # run() sets STREAM_OD_CONFIG_FILE for --config: recorded here, so that monkeypatch unsets
    # it afterwards (delenv alone records nothing when it is not set)
    monkeypatch.setenv("STREAM_OD_CONFIG_FILE", "")
    monkeypatch.delenv("STREAM_OD_CONFIG_FILE")
    rc = worker_cli.run(argparse.Namespace(config=config, artifact=artifact))
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(
    "name, value, takes",
    [
        ("STREAM_OD_KAFKA", "notjson", "JSON object"),
        ("STREAM_OD_CONSUMER", "x", "JSON object"),
        ("STREAM_OD_SEVERITY_MARGINS", "abc", "JSON array"),
        ("STREAM_OD_SUPPRESS_BY", "source_ip", "JSON array"),
    ],
)
def test_a_setting_that_is_not_json_exits_2_naming_it(monkeypatch, capsys, name, value, takes):
    monkeypatch.setenv(name, value)
    rc, err = _run_worker(monkeypatch, capsys)
    assert rc == 2, err
    assert err.startswith(f"stream-od worker: invalid configuration: {name} is not JSON"), err
    assert takes in err and err.count("\n") == 1


@pytest.mark.parametrize("text", ["5", '"hi"', "[1]"])
def test_a_config_file_that_is_not_a_json_object_exits_2(tmp_path, monkeypatch, capsys, text):
    f = tmp_path / "worker.json"
    f.write_text(text)
    rc, err = _run_worker(monkeypatch, capsys, config=str(f))
    assert rc == 2, err
    assert "a JSON file must hold one object of settings" in err and err.count("\n") == 1, err


def test_a_misspelt_variable_exits_2_naming_the_setting_meant(monkeypatch, capsys):
    monkeypatch.setenv("STREAM_OD_MAX_BATCH_RECORD", "5")
    rc, err = _run_worker(monkeypatch, capsys)
    assert rc == 2, err
    assert (
        "unknown environment variable(s) STREAM_OD_MAX_BATCH_RECORD (did you mean "
        "STREAM_OD_MAX_BATCH_RECORDS?)" in err
    ), err


def test_a_metrics_port_in_use_exits_2_naming_the_port_and_the_setting(monkeypatch, capsys):
    """It was an OSError traceback (exit 1), after the Kafka checks and the model load, which
    are stubbed here: the port is the only thing this start can fail on."""
    import socket
    from types import SimpleNamespace

    from stream_od import worker, worker_cli

    model = SimpleNamespace(schema=SimpleNamespace(windows=None), version="v1")
    monkeypatch.setattr(worker_cli, "_check_kafka", lambda settings: (settings, None))
    monkeypatch.setattr(worker_cli, "_first_model", lambda settings, metrics: (model, None))
    monkeypatch.setattr(worker, "Worker", lambda *args, **kwargs: SimpleNamespace())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("STREAM_OD_METRICS_HOST", "127.0.0.1")
        monkeypatch.setenv("STREAM_OD_METRICS_PORT", str(port))
        rc, err = _run_worker(monkeypatch, capsys)
    assert rc == 2, err
    assert f"port {port} (STREAM_OD_METRICS_PORT) is already in use on 127.0.0.1" in err, err
    assert err.count("\n") == 1
