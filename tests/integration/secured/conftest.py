"""A secured broker for the session: ``deploy/kafka/kafka.sh up --secured`` on free ports in a
temporary directory (SASL_SSL with SCRAM-SHA-512, TLS certificates made at start, the KRaft
StandardAuthorizer with allow.everyone.if.no.acl.found=false), stopped and wiped at the end.

Every component runs as its own SCRAM user with exactly the ACLs docs/security.md lists, created
with the Admin API as the admin user; each test makes its own user, so removing an ACL in one
test never changes another.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.secured.cluster import SecuredCluster
from tests.worker_support import free_port

SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "kafka" / "kafka.sh"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.kafka)


def _distinct_free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@pytest.fixture(scope="session")
def secured(tmp_path_factory) -> Iterator[SecuredCluster]:
    """The secured broker, with its own directory and ports beside the plain one."""
    directory = tmp_path_factory.mktemp("secured") / "kafka"
    ports = dict(zip(("client", "controller", "broker"), _distinct_free_ports(3)))
    env = {
        **os.environ,
        "STREAM_OD_KAFKA_DIR": str(directory),
        "STREAM_OD_KAFKA_PORT": str(ports["client"]),
        "STREAM_OD_KAFKA_CONTROLLER_PORT": str(ports["controller"]),
        "STREAM_OD_KAFKA_BROKER_PORT": str(ports["broker"]),
        "PYTHON": sys.executable,
        "KAFKA_HEAP_OPTS": os.environ.get("KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m"),
    }

    def script(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(SCRIPT), *args, "--secured"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    try:
        yield SecuredCluster.start(directory, script, ports)
    finally:
        down = script("down", "--wipe")
        assert down.returncode == 0, down.stderr
