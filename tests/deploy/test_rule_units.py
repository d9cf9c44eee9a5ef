"""The alerting rules fire when workers die or hang: promtool's own rule unit tests
(deploy/prometheus/tests/), so the rules are evaluated by Prometheus' engine, not by us."""

from __future__ import annotations

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


def test_the_unit_tests_can_fail(tmp_path):
    """The same tests against rules whose `for:` is an hour: promtool must report failures."""
    rules = (TESTS.parent / "rules" / "stream-od.yml").read_text().replace("for: 5m", "for: 1h")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "stream-od.yml").write_text(rules.replace("for: 2m", "for: 1h"))
    (tmp_path / "tests").mkdir()
    for f in TESTS.glob("*.test.yml"):
        (tmp_path / "tests" / f.name).write_text(f.read_text())
    done = subprocess.run(
        [promtool(), "test", "rules", *map(str, (tmp_path / "tests").glob("*.test.yml"))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr
