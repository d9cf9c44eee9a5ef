"""docs/operate.md (the README's "Operate" section) keeps up with the stack it describes."""

from __future__ import annotations

import re

import pytest

from stream_od.records import REASONS
from stream_od.registry.errors import REFUSAL_REASONS
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
    panel = next(p for p in stack.dashboard_panels() if p["title"] == "Dead letters by reason")
    for reason in REASONS:
        assert reason in panel["description"] and f"`{reason}`" in doc, reason


def test_the_commands_it_promises(doc):
    for command in ("docker compose up -d --build", "docker compose up -d --scale worker=",
                    "docker compose --profile demo up -d replay", "http://localhost:3000",
                    "kubectl apply -k deploy/k8s"):
        assert command in doc, command


def test_the_model_registry_is_explained(doc):
    for text in ("TRAIN_FORCE=1 docker compose up trainer", "openssl rand -hex 32",
                 "STREAM_OD_MODEL_SIGNING_KEY", "stream-od publish", "stream-od.models",
                 "cleanup.policy=compact", "stream_od_model_swaps_total",
                 "stream_od_model_refusals_total", "create secret generic stream-od-model-signing"):
        assert text in doc, text
    for reason in REFUSAL_REASONS:
        assert f"`{reason}`" in doc, reason
    # The /models/latest volume and its restart are gone.
    assert "/models/latest" not in doc and "later release" not in doc
