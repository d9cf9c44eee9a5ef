"""Every HTTP path a probe, health check or scrape uses is served by the worker's server."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

from stream_od.metrics import Health, MetricsServer, WorkerMetrics
from tests.deploy import stack

LOCAL_URL = re.compile(r"http://127\.0\.0\.1:[^/'\"]*(/\w+)")


def probe_paths() -> set[str]:
    paths = set()
    for _, pod in stack.pod_templates():
        for c in stack.containers(pod):
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if probe in c:
                    paths.add(c[probe]["httpGet"]["path"])
    checks = [
        " ".join(svc.get("healthcheck", {}).get("test", []))
        for svc in stack.compose()["services"].values()
    ]
    checks += [line for line in stack.dockerfile_stages()[-1] if line.startswith("HEALTHCHECK")]
    for check in checks:
        paths.update(LOCAL_URL.findall(check))
    pm = stack.k8s_one("PodMonitor", "stream-od-worker")["spec"]["podMetricsEndpoints"]
    paths.update(ep["path"] for ep in pm)
    prom = stack.load_yaml(stack.PROMETHEUS / "prometheus.yml")
    paths.update(
        j.get("metrics_path", "/metrics")
        for j in prom["scrape_configs"]
        if j["job_name"] == stack.WORKER_JOB
    )
    return paths


def test_the_stack_uses_the_three_endpoints():
    assert probe_paths() == {"/metrics", "/healthz", "/readyz"}


@pytest.fixture
def server():
    health = Health(stale_after_s=60)
    health.model_loaded = health.subscribed = True
    srv = MetricsServer(WorkerMetrics(), health, "127.0.0.1", 0).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("path", sorted(probe_paths()))
def test_path_is_served(server, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as r:
            assert r.status == 200
    except urllib.error.HTTPError as exc:  # pragma: no cover - the assertion's message
        pytest.fail(f"{path}: HTTP {exc.code}")
