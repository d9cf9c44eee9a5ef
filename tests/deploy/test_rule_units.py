"""The alerting rules fire when workers die or hang: promtool's own rule unit tests
(deploy/prometheus/tests/), so the rules are evaluated by Prometheus' engine, not by us."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

TESTS = Path(__file__).parents[2] / "deploy" / "prometheus" / "tests"


def promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        raise RuntimeError(
            "promtool is missing: install Prometheus' tools (Debian: apt-get "
            "install prometheus; .ci/run does) to run the rule unit tests"
        )
    return tool


def test_rules_fire_when_workers_die_or_hang():
    files = sorted(TESTS.glob("*.test.yml"))
    assert files
    done = subprocess.run(
        [promtool(), "test", "rules", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _promtool_test(test_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _failed_alertnames(output: str) -> set[str]:
    """The alerts promtool reports a failed check of (its `alertname: X, time: T,` lines)."""
    return set(re.findall(r"alertname: (\w+), time:", output))


def test_the_unit_tests_can_fail(tmp_path):
    """stream-od.test.yml run from a scratch copy of deploy/prometheus: it passes against the
    rules as they are, and fails against rules whose 2m and 5m `for:` windows are an hour, on
    exactly the alerts with those windows. Without the passing run, a copy that broke promtool
    (a missing rules file, a bad path) would pass this test whatever the rules said."""
    test_file = TESTS / "stream-od.test.yml"
    original = (TESTS.parent / "rules" / "stream-od.yml").read_text()
    mutated = original.replace("for: 5m", "for: 1h").replace("for: 2m", "for: 1h")
    assert mutated != original
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    copy = tmp_path / "tests" / test_file.name
    copy.write_text(test_file.read_text())

    (tmp_path / "rules" / "stream-od.yml").write_text(original)
    done = _promtool_test(copy)
    assert done.returncode == 0, done.stdout + done.stderr

    (tmp_path / "rules" / "stream-od.yml").write_text(mutated)
    done = _promtool_test(copy)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert _failed_alertnames(output) == {
        "StreamOdWorkerDown",
        "StreamOdNoWorkers",
        "StreamOdWorkerStalled",
    }, output
