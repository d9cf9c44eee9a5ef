"""``stream-od worker``'s stop: bounded by ``shutdown_grace_s`` whatever the process is stuck in."""

from __future__ import annotations

import subprocess
import sys

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
