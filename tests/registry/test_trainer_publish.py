"""``stream-od train`` with the quality gate, Kafka input and publishing (real broker)."""

from __future__ import annotations

import json

from stream_od.cli import main
from stream_od.registry.directory import DirectoryRegistry
from trainer.replay import produce, sample_stream


def train_args(out, *extra):
    return [
        "train",
        "--detector",
        "mahalanobis",
        "--n-train",
        "2000",
        "--quiet",
        "--out",
        str(out),
        *map(str, extra),
    ]


def test_below_the_gate_nothing_is_published_and_the_exit_is_non_zero(
    kdd_train_path, kafka_bootstrap, new_topic, read_topic, tmp_path, capsys
):
    topic = new_topic(config={"cleanup.policy": "compact"}, prefix="models")
    rc = main(
        train_args(
            tmp_path / "art",
            "--data",
            kdd_train_path,
            "--min-auroc",
            "0.5",
            "--min-f1",
            "1",  # a perfect test batch only (a floor over 1 is refused as a mistake)
            "--publish-dir",
            tmp_path / "reg",
            "--publish-topic",
            topic,
            "--bootstrap-servers",
            kafka_bootstrap,
        )
    )
    err = capsys.readouterr().err
    assert rc == 3, err
    report = json.loads(next(line for line in err.splitlines() if "quality_gate" in line))
    assert report["quality_gate"] == "failed" and report["below"][0].startswith("f1 ")
    assert 0 < report["test_batch"]["auroc"] <= 1 and "nothing published" in err
    assert DirectoryRegistry(tmp_path / "reg").latest() is None
    assert not (tmp_path / "reg").exists()
    assert read_topic(topic) == []


def test_train_from_a_topic_then_publish(
    kdd_train_path, kafka_bootstrap, new_topic, tmp_path, capsys
):
    data = new_topic(partitions=2, prefix="traffic")
    stream = sample_stream(str(kdd_train_path), count=3000, attack_ratio=10.0, seed=3, fmt="csv")
    produce(stream, topic=data, bootstrap_servers=kafka_bootstrap)
    rc = main(
        train_args(
            tmp_path / "art",
            "--data-topic",
            data,
            "--n-records",
            1500,
            "--normal-only",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--min-auroc",
            "0.8",
            "--publish-dir",
            tmp_path / "reg",
        )
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "'normal': 1500" in err  # --normal-only: N counts normal records
    version = json.loads(out)["version"]
    reg = DirectoryRegistry(tmp_path / "reg")
    assert reg.latest() == version and (reg.path_of(version) / "manifest.json").is_file()


def test_exactly_one_input(tmp_path, capsys):
    assert main(train_args(tmp_path / "art")) == 2
    assert "exactly one of --data and --data-topic" in capsys.readouterr().err


def test_trainer_and_publish_clients_use_stream_od_kafka(
    kdd_train_path, kafka_bootstrap, new_topic, read_topic, tmp_path, capsys, monkeypatch
):
    # a bad pass-through stops `train` before any training
    monkeypatch.setenv("STREAM_OD_KAFKA", "{not json")
    rc = main(
        train_args(
            tmp_path / "a",
            "--data",
            kdd_train_path,
            "--publish-topic",
            "t",
            "--bootstrap-servers",
            kafka_bootstrap,
        )
    )
    assert rc == 2 and "STREAM_OD_KAFKA" in capsys.readouterr().err
    # the settings reach the clients: librdkafka itself rejects this value
    monkeypatch.setenv("STREAM_OD_KAFKA", '{"security.protocol": "bogus"}')
    data = new_topic(prefix="traffic")
    assert (
        main(
            train_args(
                tmp_path / "b",
                "--data-topic",
                data,
                "--n-records",
                10,
                "--bootstrap-servers",
                kafka_bootstrap,
            )
        )
        == 2
    )
    assert "security.protocol" in capsys.readouterr().err
    monkeypatch.setenv("STREAM_OD_KAFKA", '{"client.id": "stream-od-publish-test"}')
    assert main(train_args(tmp_path / "c", "--data", kdd_train_path)) == 0
    models = new_topic(config={"cleanup.policy": "compact"}, prefix="models")
    monkeypatch.setenv("STREAM_OD_KAFKA", '{"security.protocol": "bogus"}')
    assert (
        main(
            [
                "publish",
                "--artifact",
                str(tmp_path / "c"),
                "--topic",
                models,
                "--bootstrap-servers",
                kafka_bootstrap,
            ]
        )
        == 1
    )
    assert "security.protocol" in capsys.readouterr().err
    assert read_topic(models) == []
    monkeypatch.setenv("STREAM_OD_KAFKA", '{"client.id": "stream-od-publish-test"}')
    assert (
        main(
            [
                "publish",
                "--artifact",
                str(tmp_path / "c"),
                "--topic",
                models,
                "--bootstrap-servers",
                kafka_bootstrap,
            ]
        )
        == 0
    )
    assert len(read_topic(models)) == 1
