"""The Dockerfile: two images (worker by default, trainer as a target), multi-stage, slim,
non-root, no compiler in the final images, and no training stack in the worker's."""

from __future__ import annotations

import re

from tests.deploy import stack


def stages() -> dict[str, list[str]]:
    return {lines[0].split()[-1]: lines for lines in stack.dockerfile_stages()}


def test_multi_stage_from_a_slim_python_the_worker_last():
    found = stages()
    assert list(found) == ["build-trainer", "build", "trainer", "worker"]
    for lines in found.values():
        assert re.match(r"FROM python:\$\{PYTHON_VERSION\}-slim", lines[0]), lines[0]
    assert stack.dockerfile_stages()[-1][0].endswith(" AS worker"), "worker: the default target"


def test_final_stages_are_unprivileged_and_have_no_toolchain():
    for name in ("trainer", "worker"):
        final = stages()[name]
        users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
        assert users and users[-1].split(":")[0] not in ("root", "0"), name
        text = "\n".join(final)
        for tool in ("gcc", "g++", "build-essential", "clang", "make ", "cmake", "-dev "):
            assert tool not in text, f"{name} installs {tool.strip()}"


def test_worker_entrypoint_port_and_healthcheck():
    final = stages()["worker"]
    text = "\n".join(final)
    assert 'ENTRYPOINT ["stream-od"]' in final and 'CMD ["worker"]' in final
    assert "EXPOSE 9108" in final
    health = next(line for line in final if line.startswith("HEALTHCHECK"))
    assert "/healthz" in health and "9108" in health
    env = stack.dockerfile_env(final)
    assert env["STREAM_OD_METRICS_PORT"] == "9108"
    assert "KERAS_BACKEND" not in env, "the worker image has no Keras"
    assert "STOPSIGNAL SIGTERM" in text
    # its build stage proves the environment has no TensorFlow
    assert '! python -c "import tensorflow"' in "\n".join(stages()["build"])


def test_trainer_image_runs_the_training_commands():
    final = stages()["trainer"]
    assert 'ENTRYPOINT ["stream-od"]' in final
    env = stack.dockerfile_env(final)
    assert env["KERAS_BACKEND"] == "tensorflow" and env["MPLCONFIGDIR"].startswith("/tmp")


def test_dockerignore_keeps_local_state_out():
    ignored = {
        line.strip()
        for line in stack.DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".kafka", "data", "artifacts"} <= ignored
    # ...but not what the build copies.
    for needed in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "stream_od",
        "trainer",
        "requirements",
    ):
        assert needed not in ignored
