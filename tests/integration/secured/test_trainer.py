"""``stream-od train --data-topic`` on the secured broker, as its own SCRAM user: READ on the
topic and DESCRIBE on the reader's fixed group (``--group-id``, default ``stream-od.trainer``)
are all it needs; without either it stops before reading, naming what is missing."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AclOperation

from stream_od.cli import main
from tests.integration.secured.cluster import group_acl, topic_acl

DEFAULT_GROUP = "stream-od.trainer"


@pytest.fixture(scope="module")
def traffic(secured, kdd_train_path) -> str:
    """A two-partition topic of KDD CSV records with their label headers, as replay sends them."""
    from trainer.replay import sample_stream

    stream = sample_stream(str(kdd_train_path), count=3000, attack_ratio=10.0, seed=3, fmt="csv")
    topic = secured.create_topic("traffic", partitions=2)
    secured.produce(topic, stream.values, labels=list(stream.labels))
    return topic


@pytest.fixture
def train(secured, monkeypatch, capsys, tmp_path):
    """``train(topic, user, password, *more)`` -> ``(exit code, stderr)`` of ``stream-od train
    --data-topic`` as that user."""

    def run(topic: str, user: str, password: str, *more: str) -> tuple[int, str]:
        monkeypatch.setenv("STREAM_OD_KAFKA", secured.kafka_env(user, password))
        capsys.readouterr()
        out = tmp_path / f"artifact-{uuid.uuid4().hex[:6]}"
        code = main(
            [
                "train",
                "--data-topic",
                topic,
                "--n-records",
                "1500",
                "--normal-only",
                "--detector",
                "mahalanobis",
                "--n-train",
                "1000",
                "--quiet",
                "--out",
                str(out),
                "--bootstrap-servers",
                secured.bootstrap,
                *more,
            ]
        )
        return code, capsys.readouterr().err

    return run


def test_read_on_the_topic_and_describe_on_the_group_are_enough(secured, traffic, train, capsys):
    user, password = secured.add_user("trainer")
    secured.grant(
        [
            topic_acl(user, traffic, AclOperation.READ),
            group_acl(user, DEFAULT_GROUP, AclOperation.DESCRIBE),
        ]
    )
    code, err = train(traffic, user, password)
    assert code == 0 and "'normal': 1500" in err, err


@pytest.mark.parametrize(
    "missing, group",
    [("READ", DEFAULT_GROUP), ("DESCRIBE", DEFAULT_GROUP), ("DESCRIBE", "site-a.trainer")],
)
def test_without_one_acl_training_stops_before_reading_and_names_it(
    secured, traffic, train, missing, group
):
    user, password = secured.add_user("trainer")
    acls = {
        "READ": topic_acl(user, traffic, AclOperation.READ),
        "DESCRIBE": group_acl(user, group, AclOperation.DESCRIBE),
    }
    secured.grant(acl for name, acl in acls.items() if name != missing)
    code, err = train(
        traffic, user, password, *(["--group-id", group] if group != DEFAULT_GROUP else [])
    )
    named = (
        f"topic {traffic!r} (--data-topic)"
        if missing == "READ"
        else f"consumer group {group!r} (--group-id)"
    )
    assert code == 2 and named in err and f"grant {missing} on" in err, err
    assert "train: read" not in err and "does not exist" not in err, err


def test_a_missing_topic_is_said_to_be_missing(secured, train):
    user, password = secured.add_user("trainer")
    absent = f"traffic-never-created-{uuid.uuid4().hex[:8]}"
    secured.grant(
        [
            topic_acl(user, absent, AclOperation.READ),
            group_acl(user, DEFAULT_GROUP, AclOperation.DESCRIBE),
        ]
    )
    code, err = train(absent, user, password)
    assert code == 2 and f"topic {absent!r} does not exist (--data-topic)" in err, err
    assert "not authorized" not in err, err
