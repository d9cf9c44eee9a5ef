"""Every environment variable the stack sets is a real setting, and the values validate.

The workers read nothing but ``STREAM_OD_*`` settings (stream_od/config.py); a misspelt name
would be silently ignored by the container, so each name is checked against
``WorkerSettings.model_fields``, and each worker environment is loaded through the real
settings class, with a real key pair standing in for the key files the container mounts. The
workers must come out trusting that pair's public key, and the trainers must sign with its
private key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_od.config import ENV_PREFIX, WorkerSettings, load_settings
from stream_od.registry import keys
from tests.deploy import stack


def compose_envs() -> list[tuple[str, str, dict[str, str]]]:
    """``(where, image, env)`` for every compose service."""
    return [
        (
            f"docker-compose.yml service {name}",
            svc.get("image", ""),
            stack.env_mapping(svc.get("environment")),
        )
        for name, svc in stack.compose()["services"].items()
    ]


def k8s_containers() -> list[tuple[str, str, dict[str, str], dict[str, str]]]:
    """``(where, image, env, key files)`` for every container: its env with what envFrom
    brings in, and ``{path: file name}`` of the files it mounts from Secrets and ConfigMaps."""
    out = []
    for obj, pod in stack.pod_templates():
        for c in stack.containers(pod):
            env = {}
            for ref in c.get("envFrom", []):
                if "configMapRef" in ref:
                    env.update(stack.k8s_one("ConfigMap", ref["configMapRef"]["name"])["data"])
                if "secretRef" in ref:
                    secret = stack.k8s_one("Secret", ref["secretRef"]["name"])
                    env.update(secret.get("stringData", {}))
                    env.update({k: "<base64>" for k in secret.get("data", {})})
            for e in c.get("env", []):
                env[e["name"]] = str(e.get("value", f"<{e['name']} from valueFrom>"))
            files = {path: key for path, (_, _, key) in stack.k8s_mounted_files(pod, c).items()}
            out.append(
                (
                    f"deploy/k8s {obj['kind']} {obj['metadata']['name']} container {c['name']}",
                    c["image"],
                    env,
                    files,
                )
            )
    return out


def k8s_envs() -> list[tuple[str, str, dict[str, str]]]:
    return [(where, image, env) for where, image, env, _ in k8s_containers()]


def dockerfile_envs() -> list[tuple[str, str, dict[str, str]]]:
    return [
        (f"Dockerfile stage {i}", "stream-od", stack.dockerfile_env(lines))
        for i, lines in enumerate(stack.dockerfile_stages())
    ]


ALL = compose_envs() + k8s_envs() + dockerfile_envs()


@pytest.mark.parametrize("where, image, env", ALL, ids=[w for w, _, _ in ALL])
def test_every_stream_od_variable_is_a_setting(where, image, env, setting_env_names):
    allowed = setting_env_names | stack.DOCUMENTED_NON_SETTINGS
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in allowed)
    assert not unknown, f"{where} sets {unknown}, which are not WorkerSettings fields"


OURS = [(w, i, e) for w, i, e in ALL if stack.runs_stream_od(i)]


@pytest.mark.parametrize("where, image, env", OURS, ids=[w for w, _, _ in OURS])
def test_stream_od_containers_carry_only_settings(where, image, env, setting_env_names):
    stray = sorted(set(env) - setting_env_names - stack.DOCUMENTED_NON_SETTINGS)
    assert not stray, f"{where} sets {stray}: neither settings nor documented non-settings"


def test_the_stack_sets_settings_somewhere():
    names = {k for _, _, env in ALL for k in env if k.startswith(ENV_PREFIX)}
    assert {
        "STREAM_OD_BOOTSTRAP_SERVERS",
        "STREAM_OD_INPUT_TOPIC",
        "STREAM_OD_GROUP_ID",
        "STREAM_OD_MODEL_SOURCE",
        "STREAM_OD_MODEL_TOPIC",
        "STREAM_OD_MODEL_PUBLIC_KEY_FILE",
        "STREAM_OD_MODEL_PRIVATE_KEY_FILE",
        "STREAM_OD_METRICS_PORT",
    } <= names
    # The registry replaced the /models/latest volume; Ed25519 files replaced the shared HMAC
    # key, and no key travels in an environment variable.
    assert "STREAM_OD_ARTIFACT_PATH" not in names
    assert (
        not {
            "STREAM_OD_MODEL_SIGNING_KEY",
            "STREAM_OD_MODEL_SIGNING_KEY_FILE",
            *stack.KEY_VALUE_SETTINGS,
        }
        & names
    )


def with_image_env(env: dict[str, str]) -> dict[str, str]:
    return {**stack.dockerfile_env(stack.dockerfile_stages()[-1]), **env}


def service_envs(service: str, k8s_object: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """``(where, env, key files)`` of the compose ``service`` and of every container of the
    Kubernetes object named ``k8s_object`` (e.g. ``Deployment stream-od-worker``)."""
    container = stack.compose()["services"][service]
    files = {path: Path(src).name for path, src in stack.compose_secret_files(container).items()}
    out = [
        (
            f"compose {service}",
            with_image_env(stack.env_mapping(container.get("environment"))),
            files,
        )
    ]
    for where, _image, env, files in k8s_containers():
        if k8s_object in where:
            out.append((f"k8s {service}", with_image_env(env), files))
    return out


def worker_envs() -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """``(where, env, key files)`` of every worker container."""
    return service_envs("worker", "Deployment stream-od-worker")


def trainer_envs() -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """``(where, env, key files)`` of every container that publishes models."""
    return service_envs("trainer", "Job stream-od-trainer")


WORKERS, TRAINERS = worker_envs(), trainer_envs()


@pytest.mark.parametrize("where, env, files", WORKERS, ids=[w for w, _, _ in WORKERS])
def test_worker_environment_validates(where, env, files, model_keys, monkeypatch):
    stack.clean_environ(monkeypatch, stack.with_key_files(env, files, model_keys))
    settings = load_settings()  # raises ConfigError naming any bad value, or an unreadable key
    assert settings.metrics_port == WorkerSettings.model_fields["metrics_port"].default == 9108
    # Models from the compacted topic, and only those signed with the trainer's private key:
    # the worker trusts the public key of the pair, and holds no HMAC key that could sign.
    assert settings.model_source == "topic"
    assert settings.model_topic not in (
        settings.input_topic,
        settings.alerts_topic,
        settings.dead_letter_topic,
    )
    public = (model_keys / keys.PUBLIC_KEY_FILE).read_text()
    assert settings.model_public_key == public
    assert settings.model_signing_key is None
    assert keys.private_key_from_env() is None, f"{where} holds the private key"


@pytest.mark.parametrize("where, env, files", TRAINERS, ids=[w for w, _, _ in TRAINERS])
def test_trainer_signs_with_the_private_key(where, env, files, model_keys, monkeypatch):
    stack.clean_environ(monkeypatch, stack.with_key_files(env, files, model_keys))
    load_settings()  # what the trainer shares with the workers (broker, topics) validates too
    private = keys.private_key_from_env()
    assert private is not None, f"{where} would publish unsigned models"
    public = (model_keys / keys.PUBLIC_KEY_FILE).read_text()
    assert keys.public_pem(private.public_key()) == public
    assert keys.key_from_env() is None, f"{where} still signs with the shared HMAC key"
