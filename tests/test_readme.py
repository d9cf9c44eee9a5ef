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


def test_every_file_the_docs_cite_exists():
    """A figure cites the benchmark that measured it and the JSON it wrote: both must be in the
    tree, or the figure cannot be checked."""
    import re

    cited = re.compile(
        r"(?:benchmarks/results/[\w.-]+\.json|benchmarks/\w+\.(?:py|sh)|docs/[\w/.-]+\.(?:md|png))"
    )
    missing = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for path in set(cited.findall(doc.read_text())):
            if not (REPO / path).exists():
                missing.append(f"{doc.name}: {path}")
    assert missing == []
