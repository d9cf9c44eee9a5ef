"""requirements/*.lock, each image's dependencies pinned with hashes, stay true to
pyproject.toml, and each image's build stage installs its own lock and nothing else: the
worker's without the training stack, the trainer's with it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy import stack

REPO = Path(__file__).parents[2]
LOCKS = {
    "worker": REPO / "requirements" / "worker.lock",
    "trainer": REPO / "requirements" / "trainer.lock",
}
BUILD_STAGE = {"worker": "build", "trainer": "build-trainer"}
TRAINING_STACK = {"tensorflow", "keras", "pandas", "scikit-learn", "matplotlib", "h5py", "tqdm"}


def locked(image: str) -> dict[str, tuple[str, list[str]]]:
    """{name: (version, [sha256, ...])} from an image's lock file."""
    out: dict[str, tuple[str, list[str]]] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", LOCKS[image].read_text()):
        m = re.match(r"([A-Za-z0-9._-]+)==([^\s\\]+)", entry)
        if m:
            out[canonicalize_name(m.group(1))] = (
                m.group(2),
                re.findall(r"--hash=sha256:([0-9a-f]{64})", entry),
            )
    return out


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize("image", sorted(LOCKS))
def test_every_dependency_is_locked_within_its_range_with_hashes(image):
    specs = list(project()["dependencies"])
    if image == "trainer":
        specs += project()["optional-dependencies"]["train"]
    pins = locked(image)
    for spec in specs:
        req = Requirement(spec)
        version, _ = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(version, prereleases=True), (spec, version)
    assert all(hashes for _, hashes in pins.values()), "every pin carries its wheels' sha256"


def test_the_worker_lock_has_no_training_stack_and_agrees_with_the_trainers():
    worker, trainer = locked("worker"), locked("trainer")
    assert not TRAINING_STACK & set(worker), sorted(TRAINING_STACK & set(worker))
    assert TRAINING_STACK <= set(trainer)
    # One numpy, one confluent-kafka...: a model trained in one image scores alike in the other.
    for name, (version, _) in worker.items():
        assert trainer[name][0] == version, name


@pytest.mark.parametrize("image", sorted(LOCKS))
def test_each_image_installs_its_lock_with_hashes_and_the_project_without_resolving(image):
    stages = {s[0].split()[-1]: "\n".join(s) for s in stack.dockerfile_stages()}
    build = stages[BUILD_STAGE[image]]
    name = LOCKS[image].name
    assert f"COPY requirements/{name}" in build
    assert re.search(rf"pip install --require-hashes --no-deps -r {re.escape(name)}", build)
    assert re.search(r"pip install --no-deps \.", build) and "pip check" in build
    final = stages[image]
    assert f"COPY --from={BUILD_STAGE[image]} /opt/venv /opt/venv" in final
