"""Settings: environment, file, validation messages that name the setting."""

from __future__ import annotations

import pytest

from stream_od.config import load_settings
from stream_od.errors import ConfigError


def test_environment_variables_and_json_dicts(monkeypatch):
    monkeypatch.setenv("STREAM_OD_INPUT_TOPIC", "flows")
    monkeypatch.setenv("STREAM_OD_MAX_BATCH_RECORDS", "250")
    monkeypatch.setenv("STREAM_OD_KAFKA", '{"security.protocol": "SSL"}')
    s = load_settings()
    assert s.input_topic == "flows" and s.max_batch_records == 250
    assert s.client_config({"x": 1}) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SSL",
        "x": 1,
    }


def test_file_then_environment_precedence(tmp_path, monkeypatch):
    f = tmp_path / "worker.toml"
    f.write_text('group_id = "from-file"\nmax_batch_wait_ms = 7\n')
    monkeypatch.setenv("STREAM_OD_CONFIG_FILE", str(f))
    monkeypatch.setenv("STREAM_OD_MAX_BATCH_WAIT_MS", "9")
    s = load_settings()
    assert s.group_id == "from-file" and s.max_batch_wait_ms == 9


@pytest.mark.parametrize(
    "env, named",
    [
        ({"STREAM_OD_MAX_BATCH_RECORDS": "0"}, "STREAM_OD_MAX_BATCH_RECORDS"),
        ({"STREAM_OD_PROCESSING_GUARANTEE": "maybe"}, "STREAM_OD_PROCESSING_GUARANTEE"),
        ({"STREAM_OD_KAFKA": '{"enable.auto.commit": true}'}, "STREAM_OD_KAFKA"),
        ({"STREAM_OD_INPUT_TOPIC": "stream-od.alerts"}, "input_topic"),
    ],
)
def test_a_bad_setting_is_named_in_the_error(monkeypatch, env, named):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_unknown_key_in_file_is_refused(tmp_path, monkeypatch):
    f = tmp_path / "w.json"
    f.write_text('{"max_batch_record": 5}')
    monkeypatch.setenv("STREAM_OD_CONFIG_FILE", str(f))
    with pytest.raises(ConfigError, match="max_batch_record"):
        load_settings()


def test_cli_clients_take_the_workers_kafka_pass_through(monkeypatch):
    from stream_od.config import cli_kafka_config

    monkeypatch.delenv("STREAM_OD_KAFKA", raising=False)
    assert cli_kafka_config("b:9092") == {"bootstrap.servers": "b:9092"}
    monkeypatch.setenv(
        "STREAM_OD_KAFKA", '{"security.protocol": "SASL_SSL", "socket.timeout.ms": 5000}'
    )
    assert cli_kafka_config("b:9092") == {
        "bootstrap.servers": "b:9092",
        "security.protocol": "SASL_SSL",
        "socket.timeout.ms": 5000,
    }
    for bad, named in (
        ("{not json", "STREAM_OD_KAFKA"),
        ('["a"]', "STREAM_OD_KAFKA"),
        ('{"group.id": "x"}', "group.id"),
    ):
        monkeypatch.setenv("STREAM_OD_KAFKA", bad)
        with pytest.raises(ConfigError, match=named):
            cli_kafka_config("b:9092")


# -- model trust (docs/registry.md): keys from files, one scheme, the pin -------------------


def _keypair(tmp_path):
    from stream_od.registry import keys

    return keys.generate(tmp_path / "keys")


def test_model_public_key_from_a_file_is_read_at_load(tmp_path, monkeypatch):
    from stream_od.registry.signing import trust_from_settings

    _, public = _keypair(tmp_path)
    monkeypatch.setenv("STREAM_OD_MODEL_PUBLIC_KEY_FILE", str(public))
    s = load_settings()
    assert s.model_public_key == public.read_text() and s.model_signing_key is None
    trust = trust_from_settings(s)
    assert trust.scheme == "ed25519" and trust.hmac_key is None
    # The path may live in the settings file: it is a path, not the key.
    cfg = tmp_path / "worker.json"
    cfg.write_text(f'{{"model_public_key_file": "{public}"}}')
    monkeypatch.delenv("STREAM_OD_MODEL_PUBLIC_KEY_FILE")
    monkeypatch.setenv("STREAM_OD_CONFIG_FILE", str(cfg))
    assert load_settings().model_public_key == public.read_text()


def test_model_signing_key_from_a_file_drops_the_newline(tmp_path, monkeypatch):
    secret = tmp_path / "hmac"
    secret.write_text("a-mounted-hmac-secret-0123456789\n")
    monkeypatch.setenv("STREAM_OD_MODEL_SIGNING_KEY_FILE", str(secret))
    s = load_settings()
    assert s.model_signing_key.get_secret_value() == "a-mounted-hmac-secret-0123456789"
    assert "a-mounted" not in repr(s)


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"STREAM_OD_MODEL_PUBLIC_KEY_FILE": "/nonexistent/key.pub"},
            "STREAM_OD_MODEL_PUBLIC_KEY_FILE=/nonexistent/key.pub: cannot read",
        ),
        ({"STREAM_OD_MODEL_PUBLIC_KEY": "not a key"}, "STREAM_OD_MODEL_PUBLIC_KEY: not an Ed25519"),
        (
            {"STREAM_OD_MODEL_PUBLIC_KEY": "PUB", "STREAM_OD_MODEL_PUBLIC_KEY_FILE": "PUBFILE"},
            "model_public_key and model_public_key_file are both set",
        ),
        (
            {"STREAM_OD_MODEL_PUBLIC_KEY": "PUB", "STREAM_OD_MODEL_SIGNING_KEY": "x" * 32},
            "checks one scheme",
        ),
        (
            {"STREAM_OD_MODEL_PIN_VERSION": "../v1", "STREAM_OD_MODEL_SOURCE": "topic"},
            "STREAM_OD_MODEL_PIN_VERSION",
        ),
        ({"STREAM_OD_MODEL_PIN_VERSION": "v1"}, "model_pin_version needs a registry"),
    ],
)
def test_model_trust_settings_are_checked(tmp_path, monkeypatch, env, message):
    from stream_od.registry import keys

    _, public = _keypair(tmp_path)
    for k, v in env.items():
        v = v.replace("PUBFILE", str(public)).replace(
            "PUB", keys.public_pem(keys.parse_public_key(public.read_bytes(), "test"))
        )
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_model_pin_version(monkeypatch):
    monkeypatch.setenv("STREAM_OD_MODEL_SOURCE", "topic")
    monkeypatch.setenv("STREAM_OD_MODEL_PIN_VERSION", "mahalanobis-20260101T000000Z-1a2b3c4d")
    assert load_settings().model_pin_version == "mahalanobis-20260101T000000Z-1a2b3c4d"


def test_written_topics_are_what_the_worker_writes(monkeypatch):
    """What the start-up check asks WRITE on: a scoring worker its alerts, dead letters and
    (when set) scores; a windows stage, which scores nothing, its stage topic and dead letters."""
    monkeypatch.setenv("STREAM_OD_SCORES_TOPIC", "scores")
    assert load_settings().written_topics() == {
        "alerts_topic": "stream-od.alerts",
        "dead_letter_topic": "stream-od.dead-letter",
        "scores_topic": "scores",
    }
    monkeypatch.setenv("STREAM_OD_WINDOWS_STAGE_TOPIC", "by-resp")
    assert load_settings().written_topics() == {
        "windows_stage_topic": "by-resp",
        "dead_letter_topic": "stream-od.dead-letter",
    }
