"""deploy/k8s-sensor, the two-stage sensor pipeline on Kubernetes, holds together: the windows
stage feeds the topic the scoring workers read, both serve the model the trainer publishes, and
every topic they use is created.  The overlay's patches are applied here as kustomize's
strategic merge would (map keys merged, `env` merged by name, `args` replaced); with kubectl
installed, `kubectl kustomize` builds it for real."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from stream_od.cli import build_parser
from stream_od.config import WorkerSettings
from tests.deploy import stack

OVERLAY = stack.K8S.parent / "k8s-sensor"


def overlay() -> dict:
    return stack.load_yaml(OVERLAY / "kustomization.yaml")


def patched(kind: str, name: str) -> dict:
    obj = json.loads(json.dumps(stack.k8s_one(kind, name)))  # a copy
    for entry in overlay()["patches"]:
        patch = stack.load_yaml(OVERLAY / entry["path"])
        if patch["kind"] == kind and patch["metadata"]["name"] == name:
            _merge(obj, patch)
    return obj


def _merge(base: dict, patch: dict) -> None:
    for key, value in patch.items():
        if key == "containers":
            for c in value:
                (target,) = [t for t in base[key] if t["name"] == c["name"]]
                _merge(target, c)
        elif key == "env":
            names = {e["name"]: e for e in base.get(key, [])}
            names.update({e["name"]: e for e in value})
            base[key] = list(names.values())
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def settings_of(config: dict[str, str], container: dict) -> WorkerSettings:
    """The settings a container gets from the ConfigMap and its own env, read as the worker
    reads its environment (JSON lists included); key files are left out (none exist here)."""
    env = {**config, **{e["name"]: e["value"] for e in container.get("env", []) if "value" in e}}
    with pytest.MonkeyPatch.context() as mp:
        stack.clean_environ(mp, {k: v for k, v in env.items() if not k.endswith("_FILE")})
        return WorkerSettings()


@pytest.fixture(scope="module")
def config() -> dict[str, str]:
    return patched("ConfigMap", "stream-od-config")["data"]


@pytest.fixture(scope="module")
def stage_and_workers(config) -> tuple[WorkerSettings, WorkerSettings]:
    (stage_obj,) = stack.load_yaml_all(OVERLAY / "windows-stage-deployment.yaml")
    (stage,) = stage_obj["spec"]["template"]["spec"]["containers"]
    (worker,) = stack.k8s_one("Deployment", "stream-od-worker")["spec"]["template"]["spec"][
        "containers"
    ]
    return settings_of(config, stage), settings_of(config, worker)


def test_every_file_of_the_overlay_is_used():
    kust = overlay()
    used = set(kust["resources"]) | {p["path"] for p in kust["patches"]}
    on_disk = {p.name for p in OVERLAY.glob("*.yaml")} - {"kustomization.yaml"}
    assert used - {"../k8s"} == on_disk


def test_the_windows_stage_feeds_the_scoring_workers(stage_and_workers):
    stage, workers = stage_and_workers
    assert stage.windows_stage_topic == workers.input_topic != stage.input_topic
    assert stage.windows_stage_roles == workers.windows_carried == ["src"]
    assert stage.windows_stage_key == "id.resp_h"  # the dst role's key: it keys the next topic
    assert stage.group_id != workers.group_id
    assert stage.model_topic == workers.model_topic == "stream-od.models.sensor"
    assert workers.alert_format == "ecs" and workers.suppress_window_s > 0


def test_every_topic_is_created(config, stage_and_workers):
    stage, workers = stage_and_workers
    job = patched("Job", "stream-od-topics")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    env = {**config, **{e["name"]: e["value"] for e in c["env"]}}
    script = "\n".join(c["args"])
    script = script.replace(
        'create "$SENSOR_TOPIC" "${SENSOR_PARTITIONS:-12}"',
        f"create {env['SENSOR_TOPIC']} {env['SENSOR_PARTITIONS']}",
    )
    topics = stack.created_topics(script, env)
    for topic in (
        stage.input_topic,
        workers.input_topic,
        workers.model_topic,
        workers.alerts_topic,
        workers.suppression_changelog_topic,
    ):
        assert topic in topics, topic


def test_the_trainer_fits_the_windows_schema_and_publishes_where_both_read(
    config, stage_and_workers
):
    job = patched("Job", "stream-od-trainer")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    (train,) = stack.stream_od_invocations("\n".join(c["args"]))
    args = build_parser().parse_args([stack.shell_expand(a, config) for a in train])
    assert (
        args.schema == "zeek-conn-windows"
        and args.publish_topic == stage_and_workers[1].model_topic
    )
    assert "until ls /data/sensor/*" in "\n".join(c["args"])  # waits for its data


def test_kustomize_builds_the_overlay():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize deploy/k8s-sensor` not run")
    out = subprocess.run(
        [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    # the two stages, and the broker-side lag exporter of the base
    assert [d["kind"] for d in docs].count("Deployment") == 3
    # KEDA scales each stage on its own group's lag on its own input topic.
    triggers = {
        d["spec"]["scaleTargetRef"]["name"]: d["spec"]["triggers"][0]["metadata"]
        for d in docs
        if d["kind"] == "ScaledObject"
    }
    assert (
        triggers["stream-od-worker"]["consumerGroup"],
        triggers["stream-od-worker"]["topic"],
    ) == ("stream-od", "stream-od.zeek.by-responder")
    assert (
        triggers["stream-od-windows-stage"]["consumerGroup"],
        triggers["stream-od-windows-stage"]["topic"],
    ) == ("stream-od-windows", "zeek.conn")
