"""trainer.replay's sensor-log path, without Kafka: what is sent, in which order, with which
headers.  (The KDD sampler and the real broker are covered by the integration tests.)"""

from __future__ import annotations

import argparse
import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest

from stream_od.errors import ConfigError
from stream_od.schema import load_schema
from trainer import replay
from trainer.readers import read_log
from trainer.replay import (
    DETAIL_HEADER,
    LABEL_HEADER,
    SEQ_HEADER,
    Encoded,
    LogReplay,
    headers_for,
    log_stream,
    producer_config,
    sensor_logs,
)
from trainer.score import input_values

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
TSV = FIXTURES / "zeek-conn-labeled.log"
JSON = FIXTURES / "zeek-conn-labeled.json"
IOT23 = FIXTURES / "iot23-conn-labeled.log"
EVE = FIXTURES / "suricata-eve.json"
ZEEK_LABELS = load_schema("zeek-conn").label_fields


def sent(stream: Encoded) -> list[dict]:
    return [orjson.loads(v) for v in stream.values]


def test_records_go_in_event_time_order_though_the_file_is_not():
    file_order = [r["ts"] for r in read_log(TSV).records]
    assert file_order != sorted(file_order)  # Zeek writes a connection when it ends
    stream = log_stream([TSV])
    assert [r["ts"] for r in sent(stream)] == sorted(file_order)


def test_values_are_the_bytes_offline_scoring_reads():
    for path in (TSV, JSON, EVE):
        schema = "suricata-flow" if path == EVE else "zeek-conn"
        labels = load_schema(schema).label_fields
        assert log_stream([path], schema=schema).values == input_values([path], labels)


def test_tsv_and_its_json_twin_send_the_same_stream():
    a, b = log_stream([TSV]), log_stream([JSON])
    assert a.values == b.values
    assert a.labels.tolist() == b.labels.tolist() and a.details.tolist() == b.details.tolist()


def test_labels_leave_the_values_for_the_headers():
    records = sorted(read_log(TSV).records, key=lambda r: r["ts"])
    stream = log_stream([TSV])
    for i, (record, value) in enumerate(zip(records, sent(stream))):
        assert "label" not in value and "detailedlabel" not in value
        assert value == {k: v for k, v in record.items() if k not in ("label", "detailedlabel")}
        headers = dict(headers_for(stream.labels[i], stream.details[i], str(i).encode()))
        assert headers[LABEL_HEADER] == record["label"].encode()
        assert headers[DETAIL_HEADER] == record["detailedlabel"].encode()
        assert headers[SEQ_HEADER] == str(i).encode()
    assert {"Benign", "Malicious", "Background"} <= set(stream.labels.tolist())
    assert "" in stream.details.tolist()  # "(empty)" detailed labels travel as empty headers


def test_iot23_detailed_label_column_is_found():
    stream = log_stream([IOT23])
    assert all("detailed-label" not in r and "label" not in r for r in sent(stream))
    assert any(d for d in stream.details.tolist())


def test_unlabelled_flows_get_empty_label_headers():
    stream = log_stream([EVE], schema="suricata-flow")
    assert len(stream) == 10  # every event, as the sensor sends them: the worker selects
    assert set(stream.labels.tolist()) == {""}


def test_count_takes_the_first_records_in_event_time_order():
    whole, first = log_stream([TSV]), log_stream([TSV], count=7)
    assert first.values == whole.values[:7]
    assert first.labels.tolist() == whole.labels.tolist()[:7]
    assert first.details.tolist() == whole.details.tolist()[:7]


def test_kdd_streams_send_no_detailed_label_header():
    stream = Encoded(values=[b"x"], labels=np.array(["smurf"], dtype=object))
    ((_, label, detail),) = stream.items()
    assert headers_for(label, detail, b"5") == [(LABEL_HEADER, b"smurf"), (SEQ_HEADER, b"5")]


def sort_dirs(tmp: Path) -> list[Path]:
    return list(tmp.glob("stream-od-sort-*"))


@pytest.mark.parametrize("count", [None, 5, 39])
def test_a_log_longer_than_a_sort_run_is_sent_as_it_comes_out_of_the_sort(
    monkeypatch, tmp_path, count
):
    """Past one run the records are sorted through files and sent as the merge yields them:
    the same records, labels and order as the whole log in memory, and the files are gone once
    the replay is over, also when ``--count`` stops it before the end of the merge."""
    whole = log_stream([TSV], count=count)
    monkeypatch.setattr("trainer.time_order.RUN", 3)  # 40 records: 14 runs
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    logs = LogReplay([TSV], count=count)
    assert len(logs) == len(whole)
    assert len(sort_dirs(tmp_path)) == 1  # the runs are on disk; nothing sent yet
    items = list(logs.items())
    assert [value for value, _, _ in items] == whole.values
    assert [label for _, label, _ in items] == whole.labels.tolist()
    assert [detail for *_, detail in items] == whole.details.tolist()
    assert sort_dirs(tmp_path) == []
    assert sum(logs.sent.values()) == len(whole)
    assert logs.sent == Counter(whole.labels.tolist())


def test_the_whole_log_is_read_before_the_first_record_is_sent(tmp_path):
    """A log damaged at its end fails when the stream is made, not after half of it is sent;
    and the label field, found in any record, is known for the first header."""
    damaged = tmp_path / "damaged.log.gz"
    damaged.write_bytes(gzip.compress(TSV.read_bytes())[:-40])
    with pytest.raises(EOFError):
        LogReplay([damaged])
    late = tmp_path / "late-labels.json"
    unlabelled = [
        {k: v for k, v in orjson.loads(line).items() if k not in ZEEK_LABELS}
        for line in JSON.read_text().splitlines()
    ]
    unlabelled[-1]["label"] = "Malicious"  # the last record read is the first with a label
    late.write_bytes(b"\n".join(orjson.dumps(r) for r in unlabelled) + b"\n")
    labels = [label for _, label, _ in LogReplay([late]).items()]
    assert labels.count("Malicious") == 1 and labels.count("") == len(labels) - 1


def test_sensor_logs_tells_logs_from_kdd_and_refuses_a_mix(tmp_path):
    kdd = tmp_path / "kdd.gz"
    with gzip.open(kdd, "wt") as fh:
        fh.write("0,tcp,http,SF,181,5450" + ",0" * 35 + ",normal.\n")
    assert sensor_logs([TSV, JSON]) is True
    assert sensor_logs([EVE]) is True
    assert sensor_logs([kdd]) is False
    with pytest.raises(ValueError, match="mixes sensor logs"):
        sensor_logs([TSV, kdd])


def test_producer_takes_security_settings_but_keeps_idempotence(monkeypatch):
    monkeypatch.setenv("STREAM_OD_KAFKA", '{"security.protocol": "SASL_SSL", "linger.ms": 50}')
    conf = producer_config("broker:9093")
    assert conf["bootstrap.servers"] == "broker:9093"
    assert conf["security.protocol"] == "SASL_SSL" and conf["linger.ms"] == 50
    assert conf["enable.idempotence"] is True
    monkeypatch.setenv("STREAM_OD_KAFKA", '{"enable.idempotence": false}')
    with pytest.raises(ConfigError):
        producer_config("broker:9093")


class FakeProducer:
    """Records what ``produce`` hands the client (pure logic: no broker)."""

    instances: list[FakeProducer] = []

    def __init__(self, conf: dict):
        self.conf, self.sent = conf, []
        FakeProducer.instances.append(self)

    def produce(self, topic, *, value, key, on_delivery, headers):
        self.sent.append((topic, key, value, headers))

    def poll(self, _timeout=0):
        return 0

    def list_topics(self, topic, timeout):
        from types import SimpleNamespace

        return SimpleNamespace(topics={topic: SimpleNamespace(error=None)})

    def flush(self, _timeout=None):
        return 0


def test_produce_sends_values_keyed_by_sequence_with_label_headers(monkeypatch):
    monkeypatch.setattr("stream_od.kafka.clients.Producer", FakeProducer)
    stream = log_stream([TSV], count=5)
    assert replay.produce(stream, topic="t", bootstrap_servers="b:1", start_seq=10) == 5
    (producer,) = FakeProducer.instances[-1:]
    assert [value for _, _, value, _ in producer.sent] == stream.values
    assert [key for _, key, _, _ in producer.sent] == [str(i).encode() for i in range(10, 15)]
    for i, (_, _, _, headers) in enumerate(producer.sent):
        assert dict(headers) == {
            LABEL_HEADER: stream.labels[i].encode(),
            DETAIL_HEADER: stream.details[i].encode(),
            SEQ_HEADER: str(10 + i).encode(),
        }


def run_cli(monkeypatch, *argv: str) -> tuple[int, list]:
    """``stream-od replay ARGV`` against the fake producer; returns the exit code and sends."""
    from stream_od.cli import build_parser

    monkeypatch.setattr("stream_od.kafka.clients.Producer", FakeProducer)
    FakeProducer.instances.clear()
    args: argparse.Namespace = build_parser().parse_args(
        ["replay", "--quiet", "--topic", "t", *argv]
    )
    code = args.func(args)
    return code, (FakeProducer.instances[0].sent if FakeProducer.instances else [])


def test_cli_replays_every_log_record_by_default_and_count_records_when_asked(monkeypatch):
    code, sends = run_cli(monkeypatch, "--data", str(TSV))
    assert code == 0 and len(sends) == 40
    code, sends = run_cli(monkeypatch, "--data", str(TSV), str(TSV), "--count", "50")
    assert code == 0 and len(sends) == 50  # two files: 80 records, the first 50 by time


def test_cli_refuses_bad_arguments_before_sending(monkeypatch, tmp_path, capsys):
    assert run_cli(monkeypatch, "--data", str(TSV), "--count", "0") == (2, [])
    assert run_cli(monkeypatch, "--data", str(tmp_path / "absent.log")) == (2, [])
    monkeypatch.setenv("STREAM_OD_KAFKA", "not json")
    assert run_cli(monkeypatch, "--data", str(TSV)) == (2, [])
    assert "STREAM_OD_KAFKA" in capsys.readouterr().err


def test_cli_keys_records_by_a_host_field_for_traffic_windows(monkeypatch):
    code, sends = run_cli(monkeypatch, "--data", str(TSV), "--key-field", "id.orig_h")
    assert code == 0 and len(sends) == 40
    stream = log_stream([TSV])
    hosts = [orjson.loads(v)["id.orig_h"].encode() for v in stream.values]
    assert [key for _, key, _, _ in sends] == hosts
    assert [dict(h)[SEQ_HEADER] for *_, h in sends] == [str(i).encode() for i in range(40)]


class RefusingProducer(FakeProducer):
    """A broker that refuses every record (the topic does not exist).  As librdkafka does, the
    client only queues a record's delivery report; ``poll`` and ``flush`` serve the queued
    reports (the callback never runs inside ``produce``), so ``produce`` learns of a refusal
    only when it polls."""

    def __init__(self, conf: dict):
        super().__init__(conf)
        self.reports: list = []  # (on_delivery, error) not yet served
        self.sent_when_refused: int | None = None  # records sent when a refusal first arrived

    def produce(self, topic, *, value, key, on_delivery, headers):
        from confluent_kafka import KafkaError

        super().produce(topic, value=value, key=key, on_delivery=on_delivery, headers=headers)
        self.reports.append((on_delivery, KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)))

    def poll(self, _timeout=0):
        served, self.reports = self.reports, []
        if served and self.sent_when_refused is None:
            self.sent_when_refused = len(self.sent)
        for on_delivery, err in served:
            on_delivery(err, None)
        return len(served)

    def flush(self, _timeout=None):
        self.poll()
        return 0


def test_produce_stops_at_the_first_refusal_and_says_what_to_fix(monkeypatch):
    """Once a refusal reaches it (through ``poll``, as librdkafka serves delivery reports), the
    replay stops instead of sending the rest into the same refusal, and says what to fix."""
    from confluent_kafka import KafkaException

    monkeypatch.setattr("stream_od.kafka.clients.Producer", RefusingProducer)
    stream = log_stream([TSV])
    many = Encoded(values=stream.values * 250, labels=np.tile(stream.labels, 250))
    with pytest.raises(KafkaException, match="topic 't' does not exist: create it first"):
        replay.produce(many, topic="t", bootstrap_servers="b:1")
    producer = FakeProducer.instances[-1]
    assert producer.sent_when_refused is not None  # the refusal did arrive before the end
    assert len(producer.sent) < len(many)  # it stopped: not all 10,000
    # soon: at most the records sent between two polls (every 1,000) after the refusal arrived
    assert len(producer.sent) - producer.sent_when_refused <= 1000, producer.sent_when_refused


def test_cli_names_a_missing_topic_without_a_traceback(kafka_bootstrap, capsys):
    from stream_od.cli import build_parser

    args = build_parser().parse_args(
        ["replay", "--quiet", "--data", str(TSV), "--topic", "stream-od-no-such-topic"]
        + ["--bootstrap-servers", kafka_bootstrap]
    )
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "topic 'stream-od-no-such-topic' does not exist: create it first" in err
    assert "Traceback" not in err


def test_cli_closing_line_counts_the_labels_of_the_records_sent(monkeypatch, capsys):
    code, sends = run_cli(monkeypatch, "--data", str(TSV), "--count", "12")
    assert code == 0 and len(sends) == 12
    sent_labels = Counter(dict(headers)[LABEL_HEADER].decode() for *_, headers in sends)
    assert len(sent_labels) > 1  # the fixture's first 12 by time mix labels
    err = capsys.readouterr().err
    assert "replay: 12 records (" in err
    for label, n in sent_labels.items():
        assert f"{n:,} {label}" in err


def test_cli_refuses_a_key_field_on_kdd_csv_lines_before_sending(monkeypatch, tmp_path, capsys):
    kdd = tmp_path / "kdd.gz"
    with gzip.open(kdd, "wt") as fh:
        fh.write("0,tcp,http,SF,181,5450" + ",0" * 35 + ",normal.\n")
    argv = ("--data", str(kdd), "--format", "csv", "--key-field", "service")
    assert run_cli(monkeypatch, *argv) == (2, [])
    assert "--key-field needs JSON records" in capsys.readouterr().err


@pytest.mark.parametrize("rate", ["0", "-3", "nan", "inf", "1e-300"])
def test_cli_refuses_a_rate_it_cannot_pace(monkeypatch, capsys, rate):
    assert run_cli(monkeypatch, "--data", str(TSV), "--rate", rate) == (2, [])
    assert "--rate must be a finite number of records a second" in capsys.readouterr().err


def test_cli_warns_when_no_record_has_the_key_field(monkeypatch, capsys):
    code, sends = run_cli(monkeypatch, "--data", str(TSV), "--key-field", "id.orig_hx")
    assert code == 0 and len(sends) == 40 and {key for _, key, _, _ in sends} == {None}
    assert "no record has --key-field 'id.orig_hx'" in capsys.readouterr().err
    run_cli(monkeypatch, "--data", str(TSV), "--key-field", "id.orig_h")
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags", [("--attack-ratio", "150"), ("--format", "csv"), ("--seed", "3", "--format", "json")]
)
def test_cli_refuses_kdd_flags_on_a_sensor_log(monkeypatch, capsys, flags):
    assert run_cli(monkeypatch, "--data", str(TSV), *flags) == (2, [])
    assert "for a KDD replay; a sensor log is sent as it is" in capsys.readouterr().err
