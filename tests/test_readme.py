"""The README stays true: every setting is documented, and its commands are CI's."""

from __future__ import annotations

from pathlib import Path

from stream_od.config import WorkerSettings

REPO = Path(__file__).resolve().parent.parent


def test_every_worker_setting_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    missing = [n for n in WorkerSettings.model_fields if f"STREAM_OD_{n.upper()}" not in readme]
    assert missing == []


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make test " in readme and "make demo " in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()
