"""Every environment variable the stack sets is a real setting, and the values validate.

The workers read nothing but ``STREAM_OD_*`` settings (stream_od/config.py); a misspelt name
would be silently ignored by the container, so each name is checked against
``WorkerSettings.model_fields``, and each worker environment is loaded through the real
settings class.
"""

from __future__ import annotations

import os

import pytest

from stream_od.config import ENV_PREFIX, WorkerSettings, load_settings
from tests.deploy import stack


def compose_envs() -> list[tuple[str, str, dict[str, str]]]:
    """``(where, image, env)`` for every compose service."""
    return [(f"docker-compose.yml service {name}", svc.get("image", ""),
             stack.env_mapping(svc.get("environment")))
            for name, svc in stack.compose()["services"].items()]


def k8s_envs() -> list[tuple[str, str, dict[str, str]]]:
    """``(where, image, env)`` for every container, with what envFrom brings in."""
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
            out.append((f"deploy/k8s {obj['kind']} {obj['metadata']['name']} container "
                        f"{c['name']}", c["image"], env))
    return out


def dockerfile_envs() -> list[tuple[str, str, dict[str, str]]]:
    return [(f"Dockerfile stage {i}", "stream-od", stack.dockerfile_env(lines))
            for i, lines in enumerate(stack.dockerfile_stages())]


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
    assert {"STREAM_OD_BOOTSTRAP_SERVERS", "STREAM_OD_INPUT_TOPIC", "STREAM_OD_GROUP_ID",
            "STREAM_OD_MODEL_SOURCE", "STREAM_OD_MODEL_TOPIC", "STREAM_OD_MODEL_SIGNING_KEY",
            "STREAM_OD_METRICS_PORT"} <= names
    # The registry replaced the /models/latest volume.
    assert "STREAM_OD_ARTIFACT_PATH" not in names


def worker_envs() -> list[tuple[str, dict[str, str]]]:
    image_env = stack.dockerfile_env(stack.dockerfile_stages()[-1])
    out = [("compose worker", {**image_env, **stack.env_mapping(
        stack.compose()["services"]["worker"].get("environment"))})]
    for where, image, env in k8s_envs():
        if "Deployment stream-od-worker" in where:
            out.append(("k8s worker", {**image_env, **env}))
    return out


@pytest.mark.parametrize("where, env", worker_envs(), ids=[w for w, _ in worker_envs()])
def test_worker_environment_validates(where, env, monkeypatch):
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(ENV_PREFIX):
            monkeypatch.setenv(key, value.replace("<STREAM_OD_INSTANCE_ID from valueFrom>",
                                                  "stream-od-worker-abc12"))
    settings = load_settings()  # raises ConfigError naming any bad value
    assert settings.metrics_port == WorkerSettings.model_fields["metrics_port"].default == 9108
    # Models from the compacted topic, and only signed ones.
    assert settings.model_source == "topic"
    assert settings.model_topic not in (settings.input_topic, settings.alerts_topic,
                                        settings.dead_letter_topic)
    assert settings.model_signing_key is not None
