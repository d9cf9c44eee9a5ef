"""requirements/image.lock, the image's dependencies pinned with hashes, stays true to
pyproject.toml, and the Dockerfile installs from it and nothing else."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy import stack

REPO = Path(__file__).parents[2]
LOCK = REPO / "requirements" / "image.lock"


def locked() -> dict[str, tuple[str, list[str]]]:
    """{name: (version, [sha256, ...])} from the lock file."""
    out: dict[str, tuple[str, list[str]]] = {}
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    for entry in entries:
        m = re.match(r"([A-Za-z0-9._-]+)==([^\s\\]+)", entry)
        if m:
            out[canonicalize_name(m.group(1))] = (
                m.group(2),
                re.findall(r"--hash=sha256:([0-9a-f]{64})", entry),
            )
    return out


def test_every_dependency_is_locked_within_its_range_with_hashes():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = locked()
    assert len(pins) > 40  # the dependencies' own dependencies too
    for spec in project["dependencies"]:
        req = Requirement(spec)
        version, _ = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(version, prereleases=True), (spec, version)
    assert all(hashes for _, hashes in pins.values()), "every pin carries its wheels' sha256"


def test_the_image_installs_the_lock_with_hashes_and_the_project_without_resolving():
    build = "\n".join(stack.dockerfile_stages()[0])
    assert "COPY requirements/image.lock" in build
    assert re.search(r"pip install --require-hashes --no-deps -r image\.lock", build)
    assert re.search(r"pip install --no-deps \.", build) and "pip check" in build
