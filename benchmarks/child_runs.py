"""One ``stream-od`` command in its own process, measured: what the offline benchmarks
(``train_scale.py``, ``evaluate_scale.py``) compare.  Each run is a child of its own, reaped
here with ``wait4`` so that its peak resident memory is the command's, not this script's; a
command may run from another tree (a baseline commit's worktree), whose packages then come
first on the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_child(
    argv: list[str], workdir: pathlib.Path, cwd: pathlib.Path = ROOT
) -> tuple[int, float, Any, str, str]:
    """Run ``argv`` in ``cwd``; its exit code, wall seconds, own resource usage, stdout and
    stderr."""
    stdout_path, stderr_path = workdir / "stdout", workdir / "stderr"
    with stdout_path.open("wb") as so, stderr_path.open("wb") as se:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=so, stderr=se, cwd=cwd)
        # reaped here, not by Popen, to read this child's own peak memory from the kernel
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage, stdout_path.read_text(), stderr_path.read_text()


def measured(wall: float, usage: Any) -> dict[str, float]:
    """A run's wall and CPU seconds and peak resident memory (``ru_maxrss`` is in kilobytes
    on Linux)."""
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def score_child(
    log: pathlib.Path, artifact: pathlib.Path, out: pathlib.Path, tree: pathlib.Path = ROOT
) -> dict[str, Any]:
    """``stream-od score`` of ``tree``'s code on ``log`` into ``out`` (removed after): wall
    time, peak memory, its counts, and the output's sha256 to compare two trees by."""
    argv = [sys.executable, "-m", "stream_od.cli", "score", "--artifact", str(artifact)]
    argv += ["--data", str(log), "--out", str(out)]
    code, wall, usage, stdout, stderr = run_child(argv, out.parent, cwd=tree)
    if code != 0:
        raise SystemExit(f"score ({tree}) failed ({code}):\n{stderr[-3000:]}")
    counts = json.loads(stdout.strip().splitlines()[-1])
    digest = hashlib.sha256()
    with out.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    out.unlink()
    return {
        **measured(wall, usage),
        "records": counts["records"],
        "alerts": counts["alerts"],
        "sha256": digest.hexdigest(),
    }
