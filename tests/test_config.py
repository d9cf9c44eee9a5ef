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
    assert s.client_config({"x": 1}) == {"bootstrap.servers": "127.0.0.1:9092",
                                         "security.protocol": "SSL", "x": 1}


def test_file_then_environment_precedence(tmp_path, monkeypatch):
    f = tmp_path / "worker.toml"
    f.write_text('group_id = "from-file"\nmax_batch_wait_ms = 7\n')
    monkeypatch.setenv("STREAM_OD_CONFIG_FILE", str(f))
    monkeypatch.setenv("STREAM_OD_MAX_BATCH_WAIT_MS", "9")
    s = load_settings()
    assert s.group_id == "from-file" and s.max_batch_wait_ms == 9


@pytest.mark.parametrize("env, named", [
    ({"STREAM_OD_MAX_BATCH_RECORDS": "0"}, "STREAM_OD_MAX_BATCH_RECORDS"),
    ({"STREAM_OD_PROCESSING_GUARANTEE": "maybe"}, "STREAM_OD_PROCESSING_GUARANTEE"),
    ({"STREAM_OD_KAFKA": '{"enable.auto.commit": true}'}, "STREAM_OD_KAFKA"),
    ({"STREAM_OD_INPUT_TOPIC": "stream-od.alerts"}, "input_topic"),
])
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
    monkeypatch.setenv("STREAM_OD_KAFKA", '{"security.protocol": "SASL_SSL", "socket.timeout.ms": 5000}')
    assert cli_kafka_config("b:9092") == {"bootstrap.servers": "b:9092",
                                          "security.protocol": "SASL_SSL", "socket.timeout.ms": 5000}
    for bad, named in (("{not json", "STREAM_OD_KAFKA"), ('["a"]', "STREAM_OD_KAFKA"),
                       ('{"group.id": "x"}', "group.id")):
        monkeypatch.setenv("STREAM_OD_KAFKA", bad)
        with pytest.raises(ConfigError, match=named):
            cli_kafka_config("b:9092")
