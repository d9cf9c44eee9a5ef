"""deploy/k8s holds together: probes, ports, grace period, KEDA cap, monitors, names, labels."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from stream_od.cli import build_parser
from stream_od.config import ENV_PREFIX, WorkerSettings
from stream_od.kafka.clients import consumer_config
from tests.deploy import stack
from trainer.publish import EXIT_GATE


@pytest.fixture(scope="module")
def config() -> dict[str, str]:
    return stack.k8s_one("ConfigMap", "stream-od-config")["data"]


@pytest.fixture(scope="module")
def settings(config) -> WorkerSettings:
    return WorkerSettings.model_validate(
        {k.removeprefix(ENV_PREFIX).lower(): v for k, v in config.items()})


@pytest.fixture(scope="module")
def deployment() -> dict:
    return stack.k8s_one("Deployment", "stream-od-worker")


@pytest.fixture(scope="module")
def worker_container(deployment) -> dict:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


@pytest.fixture(scope="module")
def input_partitions(config, settings) -> int:
    job = stack.k8s_one("Job", "stream-od-topics")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    topics = stack.created_topics("\n".join(c["args"]), config)
    for topic in (settings.input_topic, settings.alerts_topic, settings.dead_letter_topic,
                  settings.model_topic):
        assert topic in topics, f"the topics Job does not create {topic}"
    return topics[settings.input_topic]


@pytest.fixture(scope="module")
def trainer_container() -> dict:
    (c,) = stack.k8s_one("Job", "stream-od-trainer")["spec"]["template"]["spec"]["containers"]
    return c


def signing_key_ref(container: dict) -> dict:
    (ref,) = [e["valueFrom"]["secretKeyRef"] for e in container.get("env", [])
              if e["name"] == "STREAM_OD_MODEL_SIGNING_KEY"]
    return ref


def test_every_manifest_is_in_the_kustomization():
    listed = set(stack.load_yaml(stack.K8S / "kustomization.yaml")["resources"])
    on_disk = {p.name for p in stack.K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_objects_are_well_formed():
    names = set()
    for obj in stack.k8s_objects():
        assert {"apiVersion", "kind", "metadata"} <= set(obj), obj
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in names, f"duplicate {key}"
        names.add(key)
    kinds = {k for k, _ in names}
    assert {"Deployment", "ConfigMap", "Secret", "Job", "ScaledObject", "PodMonitor",
            "PrometheusRule"} <= kinds


def test_worker_probes_hit_the_codes_endpoints(worker_container, settings):
    ports = {p["name"]: p["containerPort"] for p in worker_container["ports"]}
    assert ports["metrics"] == settings.metrics_port == 9108
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz",
                "startupProbe": "/healthz"}
    for probe, path in expected.items():
        http = worker_container[probe]["httpGet"]
        assert http["path"] == path, probe
        assert http["port"] in ("metrics", settings.metrics_port), probe


def test_termination_grace_outlasts_the_workers_shutdown(deployment, settings):
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert settings.shutdown_grace_s == 30
    assert grace > settings.shutdown_grace_s


def test_worker_reads_config_secret_and_the_model(deployment, worker_container, settings):
    refs = {next(iter(r.values()))["name"] for r in worker_container["envFrom"]}
    assert refs == {"stream-od-config", "stream-od-kafka"}
    # Models come from the compacted topic the worker watches; no shared volume.
    assert settings.model_source == "topic"
    mounts = {m["mountPath"] for m in worker_container.get("volumeMounts", [])}
    assert "/models" not in mounts
    assert not [o for o in stack.k8s_objects() if o["kind"] == "PersistentVolumeClaim"
                and "ReadWriteMany" in o["spec"]["accessModes"]], "a models volume is left"


def test_signing_key_comes_from_one_secret_outside_git(worker_container, trainer_container):
    worker_ref, trainer_ref = signing_key_ref(worker_container), signing_key_ref(trainer_container)
    assert worker_ref == trainer_ref, "the trainer signs with another key than the workers check"
    assert worker_ref.get("optional", False) is False  # no key, no pod: never serve unsigned
    # Created out of band (secret.yaml says how): a committed value would be a known key, or
    # would overwrite the real one on every `kubectl apply -k`.
    assert not [o for o in stack.k8s_objects() if o["kind"] == "Secret"
                and o["metadata"]["name"] == worker_ref["name"]]
    for obj in stack.k8s_objects():
        for field in ("data", "stringData"):
            assert "STREAM_OD_MODEL_SIGNING_KEY" not in (obj.get(field) or {}), obj["metadata"]
    assert f"create secret generic {worker_ref['name']}" in (stack.K8S / "secret.yaml").read_text()


def test_trainer_publishes_where_the_workers_read(trainer_container, config, settings):
    refs = {next(iter(r.values()))["name"] for r in trainer_container["envFrom"]}
    assert "stream-od-config" in refs
    (train,) = stack.stream_od_invocations("\n".join(trainer_container["args"]))
    args = build_parser().parse_args([stack.shell_expand(a, config) for a in train])
    assert args.command == "train"
    assert args.publish_topic == settings.model_topic
    assert args.bootstrap_servers == settings.bootstrap_servers
    assert args.min_auroc is not None and args.min_auroc >= 0.9 and args.min_f1 is not None
    assert args.out.startswith("/tmp/")
    mounts = {m["mountPath"]: m for m in trainer_container["volumeMounts"]}
    assert mounts["/data"]["readOnly"] and "/models" not in mounts
    job = stack.k8s_one("Job", "stream-od-trainer")["spec"]
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [EXIT_GATE]


def test_models_topic_fits_the_registry(config, settings):
    job = stack.k8s_one("Job", "stream-od-topics")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    script = "\n".join(c["args"])
    stack.check_models_topic(stack.created_topics(script, config),
                             stack.created_topic_configs(script, config), settings.model_topic)


def test_commands_parse_with_the_real_cli(worker_container, trainer_container, config):
    parser = build_parser()
    parser.parse_args(worker_container["args"])
    runs = stack.stream_od_invocations("\n".join(trainer_container["args"]))
    assert [r[0] for r in runs] == ["train"]
    for args in runs:
        parser.parse_args([stack.shell_expand(a, config) for a in args])


def test_keda_scales_the_worker_on_the_groups_lag(settings, input_partitions):
    so = stack.k8s_one("ScaledObject", "stream-od-worker")["spec"]
    assert so["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "stream-od-worker"}
    assert 1 <= so["minReplicaCount"] <= so["maxReplicaCount"]
    assert so["maxReplicaCount"] <= input_partitions, (
        f"maxReplicaCount {so['maxReplicaCount']} > {input_partitions} input partitions")
    (trigger,) = so["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert meta["bootstrapServers"] == settings.bootstrap_servers
    assert meta["consumerGroup"] == settings.group_id
    assert meta["topic"] == settings.input_topic
    assert meta.get("allowIdleConsumers", "false") == "false"
    assert int(meta["lagThreshold"]) > 0
    # KEDA counts the lag of a partition without a committed offset the way the worker's
    # consumer would start reading it.
    assert meta["offsetResetPolicy"] == consumer_config(settings)["auto.offset.reset"]


def test_monitors_select_the_worker_pods(deployment, settings):
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    pm = stack.k8s_one("PodMonitor", "stream-od-worker")["spec"]
    assert pm["selector"]["matchLabels"].items() <= pod_labels.items()
    (ep,) = pm["podMetricsEndpoints"]
    assert ep["port"] == "metrics" and ep["path"] == "/metrics"
    relabel = {r["targetLabel"]: r["replacement"] for r in ep["relabelings"]}
    assert relabel["job"] == stack.WORKER_JOB
    pdb = stack.k8s_one("PodDisruptionBudget", "stream-od-worker")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()


def test_prometheus_rule_matches_the_rules_file():
    rule = stack.k8s_one("PrometheusRule")
    (rules_file,) = stack.rule_files()
    assert rule["spec"]["groups"] == stack.load_yaml(rules_file)["groups"]


def test_containers_run_unprivileged():
    for obj, pod in stack.pod_templates():
        psc = pod.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, obj["metadata"]["name"]
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
        for c in stack.containers(pod):
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, c["name"]
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], c["name"]
            assert "resources" in c and "requests" in c["resources"], c["name"]


def test_images_are_pinned():
    for obj, pod in stack.pod_templates():
        for c in stack.containers(pod):
            image = c["image"]
            if stack.runs_stream_od(image):
                continue  # set by the kustomization's `images`
            assert ":" in image and not image.endswith(":latest"), image
            if image.startswith("apache/kafka"):
                assert image == f"apache/kafka:{stack.kafka_version()}"
    kust = stack.load_yaml(stack.K8S / "kustomization.yaml")
    assert any(i["name"] == "stream-od" and i.get("newTag") for i in kust["images"])


def test_kustomize_builds():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize deploy/k8s` not run")
    out = subprocess.run([kubectl, "kustomize", str(stack.K8S)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert len(docs) == len(stack.k8s_objects())
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "stream-od", d["metadata"]["name"]
    images = {c["image"] for d in docs if d["kind"] in ("Deployment", "Job")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert "stream-od" not in images  # the kustomization tagged our image
