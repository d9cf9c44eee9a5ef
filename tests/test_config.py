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


# -- start-up defects: what pydantic-settings cannot parse, a file that holds no settings, a
# -- misspelt variable ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, takes",
    [
        ("STREAM_OD_KAFKA", "notjson", "kafka takes a JSON object"),
        ("STREAM_OD_CONSUMER", "x", "consumer takes a JSON object"),
        ("STREAM_OD_SEVERITY_MARGINS", "abc", "severity_margins takes a JSON array"),
        ("STREAM_OD_SUPPRESS_BY", "source_ip", "suppress_by takes a JSON array"),
        ("stream_od_windows_carried", "", "windows_carried takes a JSON array"),
    ],
)
def test_a_dict_or_list_setting_that_is_not_json_is_named(monkeypatch, name, value, takes):
    """pydantic-settings' SettingsError (a traceback, exit 1) becomes a ConfigError naming the
    variable and what it takes, with an example."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert f"{name} is not JSON" in message and takes in message, message
    assert f"e.g. {name}='" in message and "\n" not in message


def test_a_config_file_that_is_a_directory_is_named_as_one(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAM_OD_CONFIG_FILE", str(tmp_path))
    with pytest.raises(ConfigError, match="is a directory: name a TOML or JSON file"):
        load_settings()


@pytest.mark.parametrize("text, kind", [("5", "int"), ('"hi"', "str"), ("[1]", "list")])
def test_a_json_file_that_is_not_an_object_is_refused(tmp_path, monkeypatch, text, kind):
    f = tmp_path / "worker.json"
    f.write_text(text)
    monkeypatch.setenv("STREAM_OD_CONFIG_FILE", str(f))
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert f"holds a JSON {kind}" in message and "one object of settings" in message, message
    assert "unknown setting" not in message


@pytest.mark.parametrize(
    "name, meant",
    [
        ("STREAM_OD_MAX_BATCH_RECORD", "STREAM_OD_MAX_BATCH_RECORDS"),
        ("stream_od_metric_port", "STREAM_OD_METRICS_PORT"),
        ("STREAM_OD_CONFIG", "STREAM_OD_CONFIG_FILE"),
        ("STREAM_OD_NOTHING_LIKE_IT", None),
    ],
)
def test_an_unknown_stream_od_variable_is_refused(monkeypatch, name, meant):
    """As an unknown key in the settings file is: a misspelt variable was silently ignored."""
    monkeypatch.setenv(name, "5")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert f"unknown environment variable(s) {name}" in message, message
    assert (f"did you mean {meant}?" in message) if meant else ("did you mean" not in message)


def test_a_misspelt_key_in_the_file_is_named_with_the_setting_meant(tmp_path, monkeypatch):
    f = tmp_path / "w.toml"
    f.write_text("max_batch_record = 5\n")
    monkeypatch.setenv("STREAM_OD_CONFIG_FILE", str(f))
    with pytest.raises(ConfigError, match=r"max_batch_record \(did you mean max_batch_records\?\)"):
        load_settings()


def test_variables_read_elsewhere_and_kubernetes_service_links_are_not_refused(
    tmp_path, monkeypatch
):
    from stream_od.config import OTHER_STREAM_OD_ENV

    cfg = tmp_path / "worker.toml"
    cfg.write_text('group_id = "g"\n')
    for name in OTHER_STREAM_OD_ENV:
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("STREAM_OD_CONFIG_FILE", str(cfg))
    # a Service named stream-od-worker in the pod's namespace (enableServiceLinks)
    monkeypatch.setenv("STREAM_OD_WORKER_SERVICE_HOST", "10.0.0.11")
    monkeypatch.setenv("STREAM_OD_WORKER_SERVICE_PORT", "9108")
    monkeypatch.setenv("STREAM_OD_WORKER_SERVICE_PORT_METRICS", "9108")
    monkeypatch.setenv("STREAM_OD_WORKER_PORT", "tcp://10.0.0.11:9108")
    monkeypatch.setenv("STREAM_OD_WORKER_PORT_9108_TCP", "tcp://10.0.0.11:9108")
    monkeypatch.setenv("STREAM_OD_WORKER_PORT_9108_TCP_PROTO", "tcp")
    monkeypatch.setenv("STREAM_OD_WORKER_PORT_9108_TCP_PORT", "9108")
    monkeypatch.setenv("STREAM_OD_WORKER_PORT_9108_TCP_ADDR", "10.0.0.11")
    assert load_settings().group_id == "g"
    monkeypatch.setenv("STREAM_OD_WORKER_PORT", "9108")  # not a service link: a misspelling
    with pytest.raises(ConfigError, match="STREAM_OD_WORKER_PORT"):
        load_settings()


def test_every_stream_od_variable_the_project_reads_is_a_setting_or_allowed():
    """A variable that the trainer, a deploy script or the tests read and no setting is must be
    in OTHER_STREAM_OD_ENV, or a worker started beside them would refuse to start."""
    import re
    from pathlib import Path

    from stream_od.config import ENV_PREFIX, OTHER_STREAM_OD_ENV, WorkerSettings

    root = Path(__file__).resolve().parent.parent
    files = [root / n for n in ("Makefile", "Dockerfile", "docker-compose.yml", "README.md")]
    for folder in ("stream_od", "trainer", "deploy", "benchmarks", "docs", ".ci"):
        files += [p for p in (root / folder).rglob("*") if p.is_file()]
    files += (root / "tests").rglob("conftest.py")  # the other test files name wrong ones
    settings = {ENV_PREFIX + name.upper() for name in WorkerSettings.model_fields}
    variable = re.compile(r"(?<!\w)STREAM_OD_[A-Z0-9_]*[A-Z0-9]")
    seen = set()
    for path in files:
        if path.suffix in {".pyc", ".png", ".gz", ".npz", ".keras"} or not path.exists():
            continue
        seen |= set(variable.findall(path.read_text(errors="ignore")))
    assert "STREAM_OD_KAFKA_DIR" in seen and "STREAM_OD_MODEL_PRIVATE_KEY_FILE" in seen
    assert not sorted(seen - settings - OTHER_STREAM_OD_ENV)
