"""docker-compose.yml holds together: broker settings, topics, jobs, workers, ports, mounts,
and the model signing keys (the trainer's private key and the workers' public key, as files).

Docker is not needed: the file is read as YAML with Compose's interpolation defaults applied,
and each key file a container mounts is stood in for by a real key pair made for the tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stream_od.cli import build_parser
from stream_od.config import WorkerSettings
from stream_od.registry import keys
from stream_od.worker_cli import BACKSTOP_S
from tests.deploy import stack

PRIVATE_KEY = f"./secrets/{keys.PRIVATE_KEY_FILE}"
PUBLIC_KEY = f"./secrets/{keys.PUBLIC_KEY_FILE}"
# Every setting through which a container could sign a model: the publisher's.
SIGNING_SETTINGS = (
    "STREAM_OD_MODEL_PRIVATE_KEY",
    "STREAM_OD_MODEL_PRIVATE_KEY_FILE",
    "STREAM_OD_MODEL_SIGNING_KEY",
    "STREAM_OD_MODEL_SIGNING_KEY_FILE",
)

# Broker settings that differ on purpose between the local broker and the container: addresses
# and paths. Every other line of deploy/kafka/kafka.sh's server.properties must match.
NETWORK_SPECIFIC = {
    "controller.quorum.voters",
    "listeners",
    "advertised.listeners",
    "log.dirs",
    "listener.security.protocol.map",
}


@pytest.fixture(scope="module")
def services() -> dict:
    return stack.compose()["services"]


@pytest.fixture(scope="module")
def worker(services) -> dict:
    return services["worker"]


@pytest.fixture(scope="module")
def worker_settings(worker, model_keys) -> WorkerSettings:
    env = stack.compose_key_env(worker, model_keys)
    fields = {k.removeprefix("STREAM_OD_").lower(): v for k, v in env.items()}
    return WorkerSettings.model_validate(fields)


def test_services_present(services):
    assert {"kafka", "kafka-setup", "trainer", "worker", "prometheus", "grafana", "replay"} <= set(
        services
    )
    assert services["replay"].get("profiles") == ["demo"]


def test_broker_image_is_the_local_brokers_version(services):
    assert services["kafka"]["image"] == f"apache/kafka:{stack.kafka_version()}"
    assert re.fullmatch(r"4\.1\.\d+", stack.kafka_version())
    assert services["kafka-setup"]["image"] == services["kafka"]["image"]


def test_broker_mirrors_the_local_kafka_settings(services):
    env = stack.env_mapping(services["kafka"]["environment"])
    for key, value in stack.kafka_sh_properties().items():
        var = "KAFKA_" + key.upper().replace(".", "_")
        assert var in env, f"kafka.sh sets {key}; compose's kafka service lacks {var}"
        if key not in NETWORK_SPECIFIC and key != "node.id":
            assert env[var] == value, f"{var}={env[var]!r}, kafka.sh has {key}={value}"
    # The advertised listener the workers use resolves inside the compose network.
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_topic_setup_creates_what_the_workers_use(services, worker, worker_settings):
    script = "\n".join(services["kafka-setup"]["command"])
    topics = stack.created_topics(script)
    for topic in (
        worker_settings.input_topic,
        worker_settings.alerts_topic,
        worker_settings.dead_letter_topic,
        worker_settings.model_topic,
    ):
        assert topic in topics, f"{topic} is not created (the broker's auto-creation is off)"
    replicas = worker["deploy"]["replicas"]
    assert replicas >= 2, "the issue asks for two workers in one group"
    assert replicas <= topics[worker_settings.input_topic], (
        "more worker replicas than input partitions: the extra ones would idle"
    )


def test_models_topic_fits_the_registry(services, worker_settings):
    script = "\n".join(services["kafka-setup"]["command"])
    broker = stack.env_mapping(services["kafka"]["environment"])
    stack.check_models_topic(
        stack.created_topics(script),
        stack.created_topic_configs(script),
        worker_settings.model_topic,
        broker_message_max_bytes=int(broker["KAFKA_MESSAGE_MAX_BYTES"]),
    )


def test_workers_bootstrap_from_the_broker_listener(worker_settings):
    assert worker_settings.bootstrap_servers == "kafka:9092"


def test_jobs_run_in_order(services):
    dep = {name: svc.get("depends_on", {}) for name, svc in services.items()}
    assert dep["kafka-setup"]["kafka"]["condition"] == "service_healthy"
    assert dep["trainer"]["kafka-setup"]["condition"] == "service_completed_successfully"
    assert dep["worker"]["trainer"]["condition"] == "service_completed_successfully"
    assert dep["worker"]["kafka-setup"]["condition"] == "service_completed_successfully"


def test_trainer_publishes_where_the_workers_read(services, worker_settings, model_keys):
    trainer = services["trainer"]
    tenv = stack.env_mapping(trainer["environment"])
    (train,) = [
        a for a in stack.stream_od_invocations("\n".join(trainer["command"])) if a[0] == "train"
    ]
    args = build_parser().parse_args([stack.shell_expand(a, tenv) for a in train])
    # The trainer publishes to the topic the workers watch, on the broker they read, signed with
    # the private key whose public half they check, and only past a quality gate.
    assert worker_settings.model_source == "topic"
    assert args.publish_topic == worker_settings.model_topic
    assert args.bootstrap_servers == worker_settings.bootstrap_servers
    private = keys.private_key_from_env(stack.compose_key_env(trainer, model_keys))
    assert private is not None, "the trainer would publish unsigned models"
    assert keys.public_pem(private.public_key()) == worker_settings.model_public_key
    assert worker_settings.model_signing_key is None
    assert args.min_auroc is not None and args.min_auroc >= 0.9
    assert args.min_f1 is not None
    # No shared model volume any more: the models travel on Kafka.
    assert "models" not in (stack.compose().get("volumes") or {})
    for name in ("trainer", "worker"):
        assert not any(":/models" in v for v in services[name].get("volumes", [])), name
    # KDD data: host ./data, read-only.
    for name in ("trainer", "replay"):
        assert "./data:/data:ro" in services[name]["volumes"], name


def test_each_side_gets_only_its_key(services):
    trainer_files = stack.compose_secret_files(services["trainer"])
    tenv = stack.env_mapping(services["trainer"]["environment"])
    assert set(trainer_files.values()) == {PRIVATE_KEY}
    assert trainer_files.get(tenv.get("STREAM_OD_MODEL_PRIVATE_KEY_FILE")) == PRIVATE_KEY
    worker_files = stack.compose_secret_files(services["worker"])
    wenv = stack.env_mapping(services["worker"]["environment"])
    assert set(worker_files.values()) == {PUBLIC_KEY}
    assert worker_files.get(wenv.get("STREAM_OD_MODEL_PUBLIC_KEY_FILE")) == PUBLIC_KEY
    # A worker holds nothing that signs: no private key and no HMAC key (which would let it
    # sign models every other worker accepts), in any form.
    assert not set(SIGNING_SETTINGS) & set(wenv), wenv
    # The shared HMAC key is gone from the stack, and no service has a key in its environment
    # (`docker inspect` and every process in the container read that): only *_FILE paths.
    for name, svc in services.items():
        env = stack.env_mapping(svc.get("environment"))
        assert not {
            "STREAM_OD_MODEL_SIGNING_KEY",
            "STREAM_OD_MODEL_SIGNING_KEY_FILE",
            *stack.KEY_VALUE_SETTINGS,
        } & set(env), name
        model_keys = {s["source"] if isinstance(s, dict) else s for s in svc.get("secrets", ())} & {
            "model-signing-key",
            "model-signing-pub",
        }
        command = svc.get("command") or []
        if command == ["worker"]:  # every worker (the sensor profile's too): the public key
            assert model_keys == {"model-signing-pub"}, name
            assert not set(SIGNING_SETTINGS) & set(env), name
        elif any("stream-od train" in str(c) for c in command):  # a trainer: the private key
            assert model_keys == {"model-signing-key"}, name
        else:
            assert not model_keys, f"{name} mounts a model key it has no use for"


def test_keys_are_files_compose_requires():
    raw = stack.load_yaml(stack.COMPOSE)
    # The keys are secret files at fixed paths, no `${VAR}`, no default, no other source
    # (environment, content, external): a missing file is an error at container creation
    # ("bind source path does not exist"), so the trainer and the workers never start
    # without them, and nothing else can stand in.
    assert raw["secrets"] == {
        name: {"file": path}
        for name, path in (
            ("model-signing-key", PRIVATE_KEY),
            ("model-signing-pub", PUBLIC_KEY),
            ("grafana-admin-password", "./secrets/grafana-admin-password"),
        )
    }
    # Nor does the stack require any variable now: no key travels through .env.
    text = stack.COMPOSE.read_text()
    assert not re.search(r"\$\{\w+:?\?", text), "docker-compose.yml requires a variable"
    for name in stack.KEY_VALUE_SETTINGS:
        assert not re.search(rf"\b{name}\b", text), f"docker-compose.yml mentions {name}"
    # The folder is the operator's: outside git and the image's build context.
    ignored = {line.strip() for line in stack.DOCKERIGNORE.read_text().splitlines()}
    assert "secrets" in ignored
    git = shutil.which("git")
    if git is None or not (stack.REPO / ".git").exists():
        pytest.skip("not a git checkout: .gitignore not checked")
    for path in (PRIVATE_KEY, PUBLIC_KEY):
        check = subprocess.run([git, "check-ignore", "-q", path], cwd=stack.REPO)
        assert check.returncode == 0, f"git does not ignore {path}"
    tracked = subprocess.run(
        [git, "ls-files", "secrets"], cwd=stack.REPO, capture_output=True, text=True, check=True
    ).stdout
    assert not tracked, f"keys committed: {tracked}"


def test_trainer_reads_its_key_before_it_trains(services, model_keys):
    script = "\n".join(services["trainer"]["command"])
    code = stack.key_check_code(script)
    # First thing: before the broker is asked, and long before a model is signed.
    assert (
        script.index(code) < script.index("get_watermark_offsets") < script.index("stream-od train")
    )
    stack.check_key_check(code, model_keys)


def test_trainer_skips_when_a_model_is_published(services):
    script = "\n".join(services["trainer"]["command"])
    assert "get_watermark_offsets" in script and "TRAIN_FORCE" in script
    assert script.index("TRAIN_FORCE") < script.index("stream-od train")


def test_commands_parse_with_the_real_cli(services):
    parser = build_parser()
    invocations = [services["worker"]["command"], services["replay"]["command"]]
    tenv = stack.env_mapping(services["trainer"]["environment"])
    invocations += [
        [stack.shell_expand(a, tenv) for a in args]
        for args in stack.stream_od_invocations("\n".join(services["trainer"]["command"]))
    ]
    assert any(args[0] == "train" for args in invocations), "the trainer never trains"
    for args in invocations:
        try:
            parser.parse_args(args)
        except SystemExit as exc:
            pytest.fail(f"`stream-od {' '.join(args)}` is rejected by the CLI (exit {exc.code})")


def test_ports_and_probes(services, worker, worker_settings):
    port = worker_settings.metrics_port
    assert port == WorkerSettings.model_fields["metrics_port"].default == 9108
    assert str(port) in [str(p) for p in worker.get("expose", [])]
    probe = " ".join(worker["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in probe
    prom = stack.load_yaml(stack.PROMETHEUS / "prometheus.yml")
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == stack.WORKER_JOB)
    assert job.get("metrics_path", "/metrics") == "/metrics"
    sd = job["dns_sd_configs"][0]
    assert sd["port"] == port
    workers = [n for n, svc in services.items() if svc.get("command") == ["worker"]]
    assert sd["names"] == workers  # every worker service, the sensor profile's too
    for name in workers:
        assert str(port) in [str(p) for p in services[name].get("expose", [])], name


def test_stop_grace_outlasts_the_workers_shutdown(worker, worker_settings):
    assert (
        stack.duration_s(worker["stop_grace_period"])
        > worker_settings.shutdown_grace_s + BACKSTOP_S
    )


def test_mounted_config_files_exist(services):
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (stack.REPO / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_loads_the_rules(services):
    """Prometheus' rule_files globs, resolved through the container's mounts to this checkout,
    must find exactly the rule files the tests evaluate (the workers' and the broker-side
    ones), each with rules in it: a moved directory, a wrong glob, a mount of the wrong folder
    or a rules file no test sees fails here."""
    prom = stack.load_yaml(stack.PROMETHEUS / "prometheus.yml")
    mounts = dict(v.split(":")[:2][::-1] for v in services["prometheus"]["volumes"])
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    assert prom["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    loaded: set[Path] = set()
    for pattern in prom["rule_files"]:
        container_dir, glob = pattern.rsplit("/", 1)
        assert container_dir in mounts, f"{pattern}: {container_dir} is not mounted"
        loaded |= {p.resolve() for p in (stack.REPO / mounts[container_dir]).glob(glob)}
    assert loaded == {stack.WORKER_RULES.resolve(), stack.BROKER_RULES.resolve()}
    assert set(stack.rule_files()) <= loaded
    for f in sorted(loaded):
        assert f.is_file() and stack.alert_rules((f,)), f"{f} holds no rule"


def test_grafana_is_provisioned(services):
    mounts = dict(v.split(":")[:2][::-1] for v in services["grafana"]["volumes"])
    provider = stack.load_yaml(stack.GRAFANA / "provisioning" / "dashboards" / "stream-od.yml")
    path = provider["providers"][0]["options"]["path"]
    assert mounts[path] == "./deploy/grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    ds = stack.load_yaml(stack.GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    url = ds["datasources"][0]["url"]
    assert url == "http://prometheus:9090" and "9090" in services["prometheus"]["ports"][0]


def test_third_party_images_are_pinned(services):
    for name, svc in services.items():
        image = svc.get("image", "")
        if stack.runs_stream_od(image):  # built here, by one service (the test below)
            assert "build" in svc or svc.get("pull_policy") == "never", name
            continue
        tag = image.rpartition(":")[2]
        assert ":" in image and tag != "latest" and re.search(r"\d", tag), f"{name}: {image}"
