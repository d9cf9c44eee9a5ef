"""deploy/k8s holds together: probes, ports, grace period, KEDA cap, monitors, names, labels,
and the model signing keys (the trainer Job's private key, the workers' public key, as files)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from stream_od.cli import build_parser
from stream_od.config import ENV_PREFIX, WorkerSettings
from stream_od.kafka.clients import consumer_config
from stream_od.registry import keys
from stream_od.worker_cli import BACKSTOP_S
from tests.deploy import stack
from trainer.gate import EXIT_GATE

PRIVATE_KEY_SETTING = keys.PRIVATE_KEY_ENV + keys.FILE_SUFFIX
PUBLIC_KEY_SETTING = keys.PUBLIC_KEY_ENV + keys.FILE_SUFFIX


@pytest.fixture(scope="module")
def config() -> dict[str, str]:
    return stack.k8s_one("ConfigMap", "stream-od-config")["data"]


@pytest.fixture(scope="module")
def settings(config) -> WorkerSettings:
    return WorkerSettings.model_validate(
        {k.removeprefix(ENV_PREFIX).lower(): v for k, v in config.items()}
    )


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
    for topic in (
        settings.input_topic,
        settings.alerts_topic,
        settings.dead_letter_topic,
        settings.model_topic,
    ):
        assert topic in topics, f"the topics Job does not create {topic}"
    return topics[settings.input_topic]


@pytest.fixture(scope="module")
def trainer_container() -> dict:
    (c,) = stack.k8s_one("Job", "stream-od-trainer")["spec"]["template"]["spec"]["containers"]
    return c


@pytest.fixture(scope="module")
def trainer_pod() -> dict:
    return stack.k8s_one("Job", "stream-od-trainer")["spec"]["template"]["spec"]


def env_values(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def key_volume(pod: dict, container: dict, setting: str) -> tuple[dict, dict, tuple]:
    """``(volume, mount, (kind, name, key))`` of the file the ``*_FILE`` setting names."""
    path = env_values(container).get(setting)
    assert path, f"{container['name']} does not set {setting}"
    files = stack.k8s_mounted_files(pod, container)
    assert path in files, f"{setting}={path}: nothing is mounted there ({sorted(files)})"
    mount = next(m for m in container["volumeMounts"] if path.startswith(m["mountPath"]))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    return volume, mount, files[path]


def objects_referenced(pod: dict) -> set[tuple[str, str]]:
    """Every ``(kind, name)`` of a Secret or ConfigMap a pod reads, by volume or environment."""
    out = set()
    for v in pod.get("volumes", []):
        if "secret" in v:
            out.add(("Secret", v["secret"]["secretName"]))
        if "configMap" in v:
            out.add(("ConfigMap", v["configMap"]["name"]))
        for src in v.get("projected", {}).get("sources", []):
            if "secret" in src:
                out.add(("Secret", src["secret"]["name"]))
            if "configMap" in src:
                out.add(("ConfigMap", src["configMap"]["name"]))
    for c in stack.containers(pod):
        for ref in c.get("envFrom", []):
            if "secretRef" in ref:
                out.add(("Secret", ref["secretRef"]["name"]))
            if "configMapRef" in ref:
                out.add(("ConfigMap", ref["configMapRef"]["name"]))
        for e in c.get("env", []):
            frm = e.get("valueFrom", {})
            if "secretKeyRef" in frm:
                out.add(("Secret", frm["secretKeyRef"]["name"]))
            if "configMapKeyRef" in frm:
                out.add(("ConfigMap", frm["configMapKeyRef"]["name"]))
    return out


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
    assert {
        "Deployment",
        "ConfigMap",
        "Secret",
        "Job",
        "ScaledObject",
        "PodMonitor",
        "PrometheusRule",
    } <= kinds


def test_worker_probes_hit_the_codes_endpoints(worker_container, settings):
    ports = {p["name"]: p["containerPort"] for p in worker_container["ports"]}
    assert ports["metrics"] == settings.metrics_port == 9108
    expected = {
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
        "startupProbe": "/healthz",
    }
    for probe, path in expected.items():
        http = worker_container[probe]["httpGet"]
        assert http["path"] == path, probe
        assert http["port"] in ("metrics", settings.metrics_port), probe


def test_termination_grace_outlasts_the_workers_shutdown(deployment, settings):
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert settings.shutdown_grace_s == 30
    assert grace > settings.shutdown_grace_s + BACKSTOP_S  # the worker's last resort, too


def test_worker_reads_config_secret_and_the_model(deployment, worker_container, settings):
    refs = {next(iter(r.values()))["name"] for r in worker_container["envFrom"]}
    assert refs == {"stream-od-config", "stream-od-kafka"}
    # Models come from the compacted topic the worker watches; no shared volume.
    assert settings.model_source == "topic"
    mounts = {m["mountPath"] for m in worker_container.get("volumeMounts", [])}
    assert "/models" not in mounts
    assert not [
        o
        for o in stack.k8s_objects()
        if o["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in o["spec"]["accessModes"]
    ], "a models volume is left"


def test_private_key_is_a_file_in_the_trainer_only(trainer_pod, trainer_container):
    volume, mount, (kind, name, key) = key_volume(
        trainer_pod, trainer_container, PRIVATE_KEY_SETTING
    )
    assert (kind, key) == ("Secret", keys.PRIVATE_KEY_FILE)
    assert mount["readOnly"] is True
    secret = volume["secret"]
    assert secret.get("optional", False) is False  # no key, no pod: never publish unsigned
    # 0400, then the kubelet gives the pod's fsGroup read (0440, root:fsGroup): the trainer must
    # run in that group, or it could not read its own key.
    assert secret["defaultMode"] == 0o400
    psc = trainer_pod["securityContext"]
    assert psc["fsGroup"] == psc["runAsGroup"], psc
    # No other pod can read it, whatever the route.
    for obj, pod in stack.pod_templates():
        if obj["metadata"]["name"] != "stream-od-trainer":
            assert ("Secret", name) not in objects_referenced(pod), obj["metadata"]["name"]


def test_workers_hold_only_the_public_key(
    deployment, worker_container, trainer_pod, trainer_container
):
    pod = deployment["spec"]["template"]["spec"]
    volume, mount, (kind, name, key) = key_volume(pod, worker_container, PUBLIC_KEY_SETTING)
    assert (kind, key) == ("ConfigMap", keys.PUBLIC_KEY_FILE)
    assert mount["readOnly"] is True
    assert volume["configMap"].get("optional", False) is False  # no key, no unchecked models
    # Nothing that signs: no private key and no shared HMAC key, in any form.
    env = env_values(worker_container)
    assert not {
        keys.PRIVATE_KEY_ENV,
        PRIVATE_KEY_SETTING,
        keys.SIGNING_KEY_ENV,
        keys.SIGNING_KEY_ENV + keys.FILE_SUFFIX,
    } & set(env), env
    (_, _, (_, private_secret, _)) = key_volume(trainer_pod, trainer_container, PRIVATE_KEY_SETTING)
    assert ("Secret", private_secret) not in objects_referenced(pod)


def test_no_key_in_an_environment_variable():
    for obj, pod in stack.pod_templates():
        for c in stack.containers(pod):
            names = {e["name"] for e in c.get("env", [])}
            assert (
                not {*stack.KEY_VALUE_SETTINGS, keys.SIGNING_KEY_ENV + keys.FILE_SUFFIX} & names
            ), f"{obj['metadata']['name']}/{c['name']}"
    for obj in stack.k8s_objects():
        for field in ("data", "stringData"):
            for k in obj.get(field) or {}:
                assert not k.startswith(stack.KEY_VALUE_SETTINGS), (obj["metadata"], k)


def test_key_objects_are_created_outside_the_kustomization(
    trainer_pod, trainer_container, deployment, worker_container
):
    (_, _, private) = key_volume(trainer_pod, trainer_container, PRIVATE_KEY_SETTING)
    (_, _, public) = key_volume(
        deployment["spec"]["template"]["spec"], worker_container, PUBLIC_KEY_SETTING
    )
    # A committed private key would be known to everyone; a committed placeholder, private or
    # public, would be written over the real one by every `kubectl apply -k`.
    defined = {(o["kind"], o["metadata"]["name"]) for o in stack.k8s_objects()}
    for kind, name, _key in (private, public):
        assert (kind, name) not in defined, f"{kind} {name} is in the kustomization"
    # secret.yaml says how to make them, under the names and keys the pods mount.
    howto = stack.flat_commands((stack.K8S / "secret.yaml").read_text())
    assert "stream-od keygen --out secrets/" in howto
    assert (
        f"create secret generic {private[1]} --from-file={private[2]}="
        f"secrets/{keys.PRIVATE_KEY_FILE}"
    ) in howto
    assert (
        f"create configmap {public[1]} --from-file={public[2]}=secrets/{keys.PUBLIC_KEY_FILE}"
    ) in howto


def test_trainer_reads_its_key_before_it_trains(trainer_container, model_keys):
    script = "\n".join(trainer_container["args"])
    code = stack.key_check_code(script)
    assert script.index(code) < script.index("stream-od train")
    stack.check_key_check(code, model_keys)


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
    stack.check_models_topic(
        stack.created_topics(script, config),
        stack.created_topic_configs(script, config),
        settings.model_topic,
    )


def test_commands_parse_with_the_real_cli(worker_container, trainer_container, config):
    parser = build_parser()
    parser.parse_args(worker_container["args"])
    runs = stack.stream_od_invocations("\n".join(trainer_container["args"]))
    assert [r[0] for r in runs] == ["train"]
    for args in runs:
        parser.parse_args([stack.shell_expand(a, config) for a in args])


def test_keda_scales_the_worker_on_the_groups_lag(settings, input_partitions):
    so = stack.k8s_one("ScaledObject", "stream-od-worker")["spec"]
    assert so["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "stream-od-worker",
    }
    assert 1 <= so["minReplicaCount"] <= so["maxReplicaCount"]
    assert so["maxReplicaCount"] <= input_partitions, (
        f"maxReplicaCount {so['maxReplicaCount']} > {input_partitions} input partitions"
    )
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


def test_prometheus_rule_matches_the_rules_files():
    rule = stack.k8s_one("PrometheusRule")
    files = (stack.WORKER_RULES, stack.BROKER_RULES)
    assert rule["spec"]["groups"] == [g for f in files for g in stack.load_yaml(f)["groups"]]


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
    for _obj, pod in stack.pod_templates():
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
    out = subprocess.run(
        [kubectl, "kustomize", str(stack.K8S)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert len(docs) == len(stack.k8s_objects())
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "stream-od", d["metadata"]["name"]
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert "stream-od" not in images  # the kustomization tagged our image


def test_no_pod_mounts_a_service_account_token():
    for obj, pod in stack.pod_templates():
        assert pod.get("automountServiceAccountToken") is False, obj["metadata"]["name"]


def test_network_policies_deny_all_but_kafka_dns_and_prometheus(deployment):
    policies = [o for o in stack.k8s_objects() if o["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert not deny[0]["spec"].get("ingress") and not deny[0]["spec"].get("egress")
    worker_labels = deployment["spec"]["template"]["metadata"]["labels"]

    def selects(policy) -> bool:
        wanted = policy["spec"]["podSelector"].get("matchLabels", {})
        return all(worker_labels.get(k) == v for k, v in wanted.items())

    ingress = [r for p in policies if selects(p) for r in p["spec"].get("ingress", ())]
    assert [port["port"] for r in ingress for port in r["ports"]] == [9108]
    assert all(peer.get("podSelector") for r in ingress for peer in r["from"])  # not everyone
    egress = [r for p in policies if selects(p) for r in p["spec"].get("egress", ())]
    assert sorted(port["port"] for r in egress for port in r["ports"]) == [53, 53, 9092, 9093]


def test_topics_keep_two_in_sync_replicas_and_the_job_can_authenticate():
    job = stack.k8s_one("Job", "stream-od-topics")
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert int(env["MIN_INSYNC_REPLICAS"]) >= 2 and int(env["REPLICATION_FACTOR"]) >= 3
    script = "\n".join(c["args"])
    assert "--config min.insync.replicas=$MIN_INSYNC_REPLICAS" in script
    assert "--command-config" in script
    (volume,) = [v for v in pod["volumes"] if v["name"] == "kafka-client"]
    assert volume["secret"]["secretName"] == "stream-od-kafka" and volume["secret"]["optional"]


def test_the_trainer_waits_for_its_data(trainer_container):
    script = "\n".join(trainer_container["args"])
    assert script.index("until [ -s") < script.index("stream-od train")
