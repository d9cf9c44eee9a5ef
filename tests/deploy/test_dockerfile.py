"""The Dockerfile: multi-stage, slim, non-root, no compiler in the final image."""

from __future__ import annotations

import re

from tests.deploy import stack


def test_multi_stage_from_a_slim_python():
    stages = stack.dockerfile_stages()
    assert len(stages) >= 2
    for lines in stages:
        assert re.match(r"FROM python:\$\{PYTHON_VERSION\}-slim", lines[0]), lines[0]
    final = "\n".join(stages[-1])
    assert re.search(r"^COPY --from=build /opt/venv /opt/venv$", final, re.M)


def test_final_stage_is_unprivileged_and_has_no_toolchain():
    final = stack.dockerfile_stages()[-1]
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    text = "\n".join(final)
    for tool in ("gcc", "g++", "build-essential", "clang", "make ", "cmake", "-dev "):
        assert tool not in text, f"the final stage installs {tool.strip()}"


def test_entrypoint_port_and_healthcheck():
    final = stack.dockerfile_stages()[-1]
    text = "\n".join(final)
    assert 'ENTRYPOINT ["stream-od"]' in final and 'CMD ["worker"]' in final
    assert "EXPOSE 9108" in final
    health = next(line for line in final if line.startswith("HEALTHCHECK"))
    assert "/healthz" in health and "9108" in health
    env = stack.dockerfile_env(final)
    assert env["STREAM_OD_METRICS_PORT"] == "9108"
    assert env["KERAS_BACKEND"] == "tensorflow"
    assert "STOPSIGNAL SIGTERM" in text


def test_dockerignore_keeps_local_state_out():
    ignored = {
        line.strip()
        for line in stack.DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".kafka", "data", "artifacts"} <= ignored
    # ...but not what the build copies.
    for needed in ("pyproject.toml", "README.md", "LICENSE", "stream_od", "trainer"):
        assert needed not in ignored
