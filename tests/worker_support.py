"""Run ``stream-od worker`` as a real subprocess and watch it over HTTP (for integration tests)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

_STARTED: list[WorkerProcess] = []  # every worker started by the test running now


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """``(status, body)``; ``(0, "")`` while nothing listens yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def metric_values(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of every sample of ``name`` in a Prometheus exposition."""
    out = {}
    for m in re.finditer(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        out[m.group(1) or ""] = float(m.group(2))
    return out


OUTCOMES = (
    "stream_od_records_scored_total",
    "stream_od_dead_letters_total",
    "stream_od_records_skipped_total",
)


def metric_total(text: str, name: str) -> float:
    return sum(metric_values(text, name).values())


def run_process_tree(args: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(args, capture_output=True, text=True, timeout=timeout)``, except that
    on a timeout every process the command started is stopped, not just the command: a demo
    or benchmark past its time leaves no worker, windows stage or replayer taking the CPU (and
    writing into topics) for the rest of the run."""
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so that all of it can be stopped
        **kwargs,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 30.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, err = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def kill_leftover_workers() -> None:
    """Kill every worker a test started and left running (a failed wait before its ``with``
    or ``kill``): on a 2-core machine a leftover worker would take CPU from every later test."""
    while _STARTED:
        w = _STARTED.pop()
        if w.proc is not None and w.proc.poll() is None:
            w.kill()


class WorkerProcess:
    """One ``stream-od worker`` subprocess with its own metrics port and log file."""

    def __init__(self, env: dict[str, str], log_path: Path, python: str | Path = sys.executable):
        self.python = str(python)  # the interpreter of the environment the worker runs in
        self.port = free_port()
        self.env = {
            **os.environ,
            **env,
            "STREAM_OD_METRICS_HOST": "127.0.0.1",
            "STREAM_OD_METRICS_PORT": str(self.port),
        }
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True, timeout: float = 60.0) -> WorkerProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.python, "-m", "stream_od.cli", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        _STARTED.append(self)
        if wait_ready:
            try:
                self.wait_ready(timeout)
            except BaseException:  # the caller's ``with`` never began: nobody else stops it
                self.kill()
                raise
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}: {self.log()}")
            try:
                if http_get(self.base + "/readyz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout} s: {self.log()}")

    def metrics(self) -> str:
        code, text = http_get(self.base + "/metrics")
        assert code == 200
        return text

    def wait_for(self, name: str, at_least: float, timeout: float = 120.0) -> str:
        return self._scrape_until(
            lambda text: metric_total(text, name) >= at_least,
            f"{name} < {at_least}",
            timeout,
        )

    def wait_settled(self, records: int, timeout: float = 120.0) -> str:
        """The metrics once ``records`` records have an outcome (scored, dead-lettered or
        skipped) in committed batches.  The worker counts outcomes last, so this page holds
        every other count of those batches; ``records_consumed`` does not promise that, as it
        is counted before a batch commits."""
        return self._scrape_until(
            lambda text: sum(metric_total(text, name) for name in OUTCOMES) >= records,
            f"fewer than {records} records settled",
            timeout,
        )

    def wait_for_samples(self, name: str, count: int, timeout: float = 30.0) -> str:
        """The metrics once ``name`` has at least ``count`` samples (a gauge per partition
        that the worker refreshes on its own schedule)."""
        return self._scrape_until(
            lambda text: len(metric_values(text, name)) >= count,
            f"{name} has < {count} samples",
            timeout,
        )

    def _scrape_until(self, done, what: str, timeout: float) -> str:
        """Scrape /metrics every 0.2 s until ``done(text)``; the worker exiting, or
        ``timeout`` seconds, fail with its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.metrics()
            if done(text):
                return text
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log()}")
            time.sleep(0.2)
        raise TimeoutError(f"{what} after {timeout} s: {self.log()}")

    def terminate(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)

    def log(self) -> str:
        return self.log_path.read_text()[-4000:] if self.log_path.exists() else ""

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def wait_consumed(
    bootstrap: str, group: str, topic: str, *workers: WorkerProcess, timeout: float = 180.0
) -> None:
    """Until ``group`` has committed to the end of every partition of ``topic``, the
    ``workers`` staying alive throughout (the partitions advance, nothing stops them)."""
    from tests.kafka_support import group_done

    deadline = time.monotonic() + timeout
    while not group_done(bootstrap, group, topic):
        for w in workers:
            assert w.proc.poll() is None, w.log()
        assert time.monotonic() < deadline, workers[0].log() if workers else topic
        time.sleep(0.3)
