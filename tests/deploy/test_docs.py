"""docs/operate.md (the README's "Operate" section) keeps up with the stack it describes."""

from __future__ import annotations

import re

import pytest

from stream_od.records import REASONS
from stream_od.registry import keys
from stream_od.registry.errors import REFUSAL_REASONS
from stream_od.schema.select import NOT_SELECTED
from tests.deploy import stack


@pytest.fixture(scope="module")
def doc() -> str:
    return stack.OPERATE_DOC.read_text()


def test_every_panel_is_explained(doc):
    documented = set(re.findall(r"^\| ([^|]+?) \|", doc, re.M))
    missing = [p["title"] for p in stack.dashboard_panels() if p["title"] not in documented]
    assert not missing, f"panels without a row in docs/operate.md: {missing}"


def test_every_alert_is_explained(doc):
    missing = [r["alert"] for r in stack.alert_rules() if f"| {r['alert']} |" not in doc]
    assert not missing, f"alerts without a row in docs/operate.md: {missing}"


def test_dead_letter_reasons_are_the_codes(doc):
    panel = next(p for p in stack.dashboard_panels() if p["title"].startswith("Dead letters by"))
    for reason in (*REASONS, NOT_SELECTED):
        assert reason in panel["description"] and f"`{reason}`" in doc, reason


def test_the_commands_it_promises(doc):
    for command in (
        "docker compose up -d --build",
        "docker compose up -d --scale worker=",
        "docker compose --profile demo up -d replay",
        "http://localhost:3000",
        "kubectl apply -k deploy/k8s",
    ):
        assert command in doc, command


def test_the_model_registry_is_explained(doc):
    for text in (
        "TRAIN_FORCE=1 docker compose up trainer",
        "stream-od publish",
        "stream-od.models",
        "cleanup.policy=compact",
        "stream_od_model_swaps_total",
        "stream_od_model_refusals_total",
        "STREAM_OD_MODEL_PIN_VERSION",
        "### Change the signing key",
    ):
        assert text in doc, text
    for reason in REFUSAL_REASONS:
        assert f"`{reason}`" in doc, reason
    # The /models/latest volume and its restart are gone, and so is the shared HMAC key in .env
    # (mentioned only to say how to move away from it).
    assert "/models/latest" not in doc and "later release" not in doc
    assert "openssl rand" not in doc and "STREAM_OD_MODEL_SIGNING_KEY=" not in doc


def test_the_key_setup_matches_the_stack(doc):
    flat = stack.flat_commands(doc)
    services = stack.compose()["services"]
    # Compose: keygen into the folder the secrets are mounted from, at the paths the settings name.
    assert "stream-od keygen --out secrets/" in flat
    for service, setting, name in (
        ("trainer", "STREAM_OD_MODEL_PRIVATE_KEY_FILE", keys.PRIVATE_KEY_FILE),
        ("worker", "STREAM_OD_MODEL_PUBLIC_KEY_FILE", keys.PUBLIC_KEY_FILE),
    ):
        path = stack.env_mapping(services[service]["environment"])[setting]
        assert stack.compose_secret_files(services[service])[path] == f"./secrets/{name}"
        assert f"`secrets/{name}`" in doc and f"`{path}`" in doc and f"`{setting}`" in doc
    # The containers run as the image's user, so the group the doc gives read on the private
    # key is the image's group, and no service runs as another user.
    user = [
        line.split()[1]
        for line in stack.dockerfile_stages()[-1]
        if line.upper().startswith("USER ")
    ][-1]
    gid = user.split(":")[1]
    assert f"chgrp {gid} secrets/model-signing.key && chmod 0640 secrets/model-signing.key" in flat
    assert f"chown $(id -u):{gid} /secrets/model-signing.*" in flat
    assert not [
        name
        for name, svc in services.items()
        if "user" in svc and stack.runs_stream_od(svc.get("image", ""))
    ]
    # Kubernetes: the objects the pods mount, made from keygen's files, at the paths they name.
    for kind, obj, c in (
        ("Job", "stream-od-trainer", "trainer"),
        ("Deployment", "stream-od-worker", "worker"),
    ):
        pod = stack.k8s_one(kind, obj)["spec"]["template"]["spec"]
        (container,) = [x for x in pod["containers"] if x["name"] == c]
        for path, (okind, name, key) in stack.k8s_mounted_files(pod, container).items():
            verb = "create secret generic" if okind == "Secret" else "create configmap"
            assert f"{verb} {name} --from-file={key}=secrets/{key}" in flat, (okind, name)
            assert f"`{path}`" in doc, path
    assert "kubectl -n stream-od rollout restart deployment/stream-od-worker" in flat
