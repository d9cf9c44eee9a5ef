"""A worker that serves from the models topic on the secured broker: its models reader needs
READ on the topic and DESCRIBE on the reader's fixed group (``<group_id>.models``, or
``STREAM_OD_MODEL_READER_GROUP_ID``), on top of the worker's own ACLs, and nothing PREFIXED."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AclOperation

from stream_od.cli import main
from tests.integration.secured.cluster import group_acl, topic_acl
from tests.integration.secured.workers import stopped, worker_acls, worker_env
from tests.worker_support import WorkerProcess


@pytest.fixture(scope="module")
def models_topic(secured, mahalanobis_artifact) -> str:
    """A models topic made by the admin, holding the artifact published by a publisher user
    with WRITE on it and nothing else."""
    topic = secured.create_topic(
        "models", config={"cleanup.policy": "compact", "max.message.bytes": str(8 << 20)}
    )
    user, password = secured.add_user("publisher")
    secured.grant([topic_acl(user, topic, AclOperation.WRITE)])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STREAM_OD_KAFKA", secured.kafka_env(user, password))
        assert (
            main(
                [
                    "publish",
                    "--artifact",
                    str(mahalanobis_artifact[1]),
                    "--topic",
                    topic,
                    "--bootstrap-servers",
                    secured.bootstrap,
                ]
            )
            == 0
        )
    return topic


def reader_env(secured, models_topic, artifact_path, reader_group: str | None = None):
    """``(user, env, acls)``: a worker serving from ``models_topic`` and every ACL it needs."""
    user, password = secured.add_user("worker")
    env = worker_env(secured, user, password, artifact_path)
    del env["STREAM_OD_ARTIFACT_PATH"]
    env |= {"STREAM_OD_MODEL_SOURCE": "topic", "STREAM_OD_MODEL_TOPIC": models_topic}
    group = reader_group or env["STREAM_OD_GROUP_ID"] + ".models"
    if reader_group:
        env["STREAM_OD_MODEL_READER_GROUP_ID"] = reader_group
    acls = worker_acls(user, env) | {
        "READ models topic": (
            topic_acl(user, models_topic, AclOperation.READ),
            f"topic {models_topic!r}",
        ),
        "DESCRIBE reader group": (
            group_acl(user, group, AclOperation.DESCRIBE),
            f"consumer group {group!r}",
        ),
    }
    return user, env, acls


def test_the_worker_serves_from_the_models_topic_with_exactly_its_acls(
    secured, models_topic, mahalanobis_artifact, kdd_stream, tmp_path
):
    artifact, path = mahalanobis_artifact
    user, env, acls = reader_env(secured, models_topic, path)
    secured.grant(binding for binding, _ in acls.values())
    with WorkerProcess(env, tmp_path / "worker.log").start() as worker:
        secured.produce(env["STREAM_OD_INPUT_TOPIC"], kdd_stream.values[:300])
        text = worker.wait_for("stream_od_records_scored_total", 300)
        assert worker.terminate() == 0, worker.log()
    assert artifact.version in text  # stream_od_model_info names the version it read


@pytest.mark.parametrize(
    "missing, reader_group",
    [
        ("READ models topic", None),
        ("DESCRIBE reader group", None),
        ("DESCRIBE reader group", "custom.models"),
    ],
)
def test_without_a_reader_acl_the_worker_stops_and_names_it(
    secured, models_topic, mahalanobis_artifact, tmp_path, missing, reader_group
):
    user, env, acls = reader_env(secured, models_topic, mahalanobis_artifact[1], reader_group)
    secured.grant(binding for name, (binding, _) in acls.items() if name != missing)
    code, log = stopped(WorkerProcess(env, tmp_path / "worker.log").start(wait_ready=False))
    setting = (
        "STREAM_OD_MODEL_TOPIC"
        if missing == "READ models topic"
        else "STREAM_OD_MODEL_READER_GROUP_ID"
    )
    assert code == 2 and acls[missing][1] in log and f"({setting})" in log, log
    assert f"grant {missing.split()[0]} on" in log and "does not exist" not in log, log
