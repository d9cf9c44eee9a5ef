"""docker-compose.yml as Docker Compose itself reads it: safe by default.

``deploy/composecheck`` loads the file with compose-go (the library ``docker compose`` is built
on: interpolation, defaults, short syntax expanded, the Compose schema validated) and prints
the project as JSON; these tests read that, not our own reading of the YAML.  Built once per
version of its sources into ``~/.cache/stream-od``; needs Go (and, the first time, the Go
module proxy).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy import stack

CHECKER = Path(__file__).parents[2] / "deploy" / "composecheck"
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY", "SIGNING_KEY", "API_KEY")
WEEK_MS = 7 * 24 * 3600 * 1000


def checker_binary() -> Path:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(
            "these tests load docker-compose.yml with compose-go: install Go "
            "(https://go.dev/dl/) and run them again"
        )
    sources = b"".join(p.read_bytes() for p in sorted(CHECKER.glob("*")) if p.is_file())
    binary = (
        Path.home()
        / ".cache"
        / "stream-od"
        / f"composecheck-{hashlib.sha256(sources).hexdigest()[:12]}"
    )
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([go, "build", "-o", str(binary), "."], cwd=CHECKER, check=True)
    return binary


@pytest.fixture(scope="module")
def project() -> dict:
    done = subprocess.run(
        [str(checker_binary()), str(stack.COMPOSE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"compose-go refused docker-compose.yml: {done.stderr}"
    return json.loads(done.stdout)


def test_one_service_builds_each_image_tag(project):
    """Two services that build one tag race when Compose hands them to Bake ("image already
    exists" on a cold machine); the others run the built image and never pull it."""
    services = project["services"]
    builders: dict[str, list[str]] = {}
    for name, svc in services.items():
        if svc.get("build"):
            builders.setdefault(svc["image"], []).append(name)
    assert builders and all(len(names) == 1 for names in builders.values()), builders
    for name, svc in services.items():
        if svc.get("image") in builders and not svc.get("build"):
            assert svc.get("pull_policy") == "never", name


def test_no_published_port_listens_on_every_interface(project):
    for name, svc in project["services"].items():
        for port in svc.get("ports", ()):
            assert port.get("host_ip") == "127.0.0.1", (name, port)


def test_no_secret_in_an_environment_variable(project):
    for name, svc in project["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if any(word in key for word in SECRET_WORDS):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, key)
    assert set(project["secrets"]) >= {
        "model-signing-key",
        "model-signing-pub",
        "grafana-admin-password",
    }


def test_no_anonymous_grafana_and_no_prometheus_lifecycle_api(project):
    services = project["services"]
    grafana = services["grafana"]["environment"]
    assert grafana.get("GF_AUTH_ANONYMOUS_ENABLED") == "false"
    assert grafana.get("GF_SECURITY_ADMIN_PASSWORD__FILE", "").startswith("/run/secrets/")
    assert not any("enable-lifecycle" in arg for arg in services["prometheus"]["command"])


def test_alerts_and_dead_letters_are_kept_a_week(project):
    script = "\n".join(project["services"]["kafka-setup"]["command"])
    for topic in ("stream-od.alerts", "stream-od.dead-letter"):
        line = next(
            line for line in script.splitlines() if line.strip().startswith(f"create {topic} ")
        )
        retention = re.search(r"retention\.ms=(\d+)", line)
        assert retention and int(retention.group(1)) >= WEEK_MS, line


def test_the_broker_has_a_fixed_cluster_id(project):
    assert project["services"]["kafka"]["environment"].get("CLUSTER_ID")
