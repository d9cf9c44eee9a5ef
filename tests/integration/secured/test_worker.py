"""The worker on the secured broker, as its own SCRAM user: it scores with exactly the ACLs
docs/security.md lists, and without any one of them it stops at once (never idles) with a
message that names what is missing.  Wrong credentials and a missing topic are told apart from
a missing permission."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AclOperation

from stream_od.kafka.reader import read_to_end
from tests.integration.secured.cluster import topic_acl
from tests.integration.secured.workers import stopped, worker_acls, worker_env
from tests.worker_support import WorkerProcess

READ, WRITE = AclOperation.READ, AclOperation.WRITE


def test_the_worker_scores_with_exactly_its_acls(
    secured, mahalanobis_artifact, kdd_stream, tmp_path
):
    user, password = secured.add_user("worker")
    env = worker_env(secured, user, password, mahalanobis_artifact[1])
    secured.grant(binding for binding, _ in worker_acls(user, env).values())
    n = 2000
    with WorkerProcess(env, tmp_path / "worker.log").start() as worker:
        secured.produce(env["STREAM_OD_INPUT_TOPIC"], kdd_stream.values[:n])
        worker.wait_for("stream_od_records_scored_total", n)
        assert worker.terminate() == 0, worker.log()
    # DESCRIBE_CONFIGS is optional: without it the topic settings are not checked, and it says so
    assert "not checked; grant DESCRIBE_CONFIGS" in worker.log(), worker.log()
    read = {
        t: read_to_end(secured.bootstrap, env[t], config=secured.client())
        for t in ("STREAM_OD_SCORES_TOPIC", "STREAM_OD_ALERTS_TOPIC")
    }
    assert sorted(int(m.key()) for m in read["STREAM_OD_SCORES_TOPIC"]) == list(range(n))
    assert read["STREAM_OD_ALERTS_TOPIC"], "no alert in 2,000 records with 5 % attacks"


def test_with_describe_configs_a_compacted_output_topic_is_refused_at_start(
    secured, mahalanobis_artifact, tmp_path
):
    """The optional DESCRIBE_CONFIGS on the output topics is all the settings check needs."""
    user, password = secured.add_user("worker")
    env = worker_env(secured, user, password, mahalanobis_artifact[1])
    dlq = secured.create_topic("dlq", config={"cleanup.policy": "compact"})
    env["STREAM_OD_DEAD_LETTER_TOPIC"] = dlq
    secured.grant(binding for binding, _ in worker_acls(user, env).values())
    outputs = ("STREAM_OD_ALERTS_TOPIC", "STREAM_OD_DEAD_LETTER_TOPIC", "STREAM_OD_SCORES_TOPIC")
    secured.grant(topic_acl(user, env[t], AclOperation.DESCRIBE_CONFIGS) for t in outputs)
    code, log = stopped(WorkerProcess(env, tmp_path / "worker.log").start(wait_ready=False))
    assert code == 2, log
    assert f"topic {dlq!r} (STREAM_OD_DEAD_LETTER_TOPIC) has cleanup.policy=compact" in log, log


@pytest.mark.parametrize(
    "missing",
    [
        "READ input topic",
        "READ group",
        "WRITE alerts topic",
        "WRITE dead-letter topic",
        "WRITE scores topic",
        "WRITE transactional id",
    ],
)
def test_without_one_acl_the_worker_stops_and_names_it(
    secured, mahalanobis_artifact, tmp_path, missing
):
    user, password = secured.add_user("worker")
    env = worker_env(secured, user, password, mahalanobis_artifact[1])
    acls = worker_acls(user, env)
    secured.grant(binding for name, (binding, _) in acls.items() if name != missing)
    code, log = stopped(WorkerProcess(env, tmp_path / "worker.log").start(wait_ready=False))
    named = acls[missing][1]
    assert code != 0 and named in log, log
    assert "does not exist" not in log, log
    if missing == "WRITE transactional id":  # refused by init_transactions, the id logged first
        assert "Transactional Id authorization failed" in log, log
    else:  # found by the start-up check, with the fix
        operation = missing.split()[0]
        assert code == 2 and f"User:{user}" in log and f"grant {operation} on" in log, log


def test_an_acl_revoked_while_running_stops_the_worker_naming_the_topic(
    secured, mahalanobis_artifact, kdd_stream, tmp_path
):
    user, password = secured.add_user("worker")
    env = worker_env(secured, user, password, mahalanobis_artifact[1])
    env["STREAM_OD_MAX_BATCH_ATTEMPTS"] = "2"
    acls = worker_acls(user, env)
    secured.grant(binding for binding, _ in acls.values())
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    with worker:
        secured.produce(env["STREAM_OD_INPUT_TOPIC"], kdd_stream.values[:200])
        worker.wait_for("stream_od_records_scored_total", 200)
        secured.revoke(acls["WRITE scores topic"][0])
        secured.produce(env["STREAM_OD_INPUT_TOPIC"], kdd_stream.values[200:400])
        code, log = stopped(worker)
    scores = env["STREAM_OD_SCORES_TOPIC"]
    assert code == 3 and f"topic {scores!r}" in log, log
    assert f"grant WRITE on Topic:{scores}" in log, log
    assert "does not exist" not in log, log


def test_wrong_password_is_an_authentication_error_with_the_reason(
    secured, mahalanobis_artifact, tmp_path
):
    user, password = secured.add_user("worker")
    env = worker_env(secured, user, "not-" + password, mahalanobis_artifact[1])
    code, log = stopped(WorkerProcess(env, tmp_path / "worker.log").start(wait_ready=False))
    assert code == 2, log
    assert "authentication failed" in log and "invalid credentials" in log, log
    assert "cannot reach" not in log, log


def test_a_topic_that_is_missing_is_told_apart_from_one_not_allowed(
    secured, mahalanobis_artifact, tmp_path
):
    user, password = secured.add_user("worker")
    env = worker_env(secured, user, password, mahalanobis_artifact[1])
    acls = worker_acls(user, env)
    absent = f"in-never-created-{uuid.uuid4().hex[:8]}"
    env["STREAM_OD_INPUT_TOPIC"] = absent  # READ granted on it: the broker may say it is absent
    acls["READ input topic"] = (topic_acl(user, absent, READ), absent)
    secured.grant(binding for binding, _ in acls.values())
    code, log = stopped(WorkerProcess(env, tmp_path / "worker.log").start(wait_ready=False))
    assert code == 2 and f"topic {absent!r} does not exist (STREAM_OD_INPUT_TOPIC)" in log, log
    assert "not authorized" not in log, log


def test_the_idempotent_producer_needs_no_cluster_permission(secured):
    """Kafka 4.1: WRITE on the topic is enough for an idempotent producer (no IDEMPOTENT_WRITE
    on the cluster), which is what an at-least-once worker and stream-od replay use."""
    user, password = secured.add_user("producer")
    topic = secured.create_topic("idempotent")
    secured.grant([topic_acl(user, topic, WRITE)])
    errors: list = []
    producer = Producer(
        {
            **secured.client(user, password),
            "enable.idempotence": True,
            "acks": "all",
            "on_delivery": lambda err, msg: errors.append(err),
        }
    )
    producer.produce(topic, b"one record")
    assert producer.flush(30) == 0 and errors == [None]
