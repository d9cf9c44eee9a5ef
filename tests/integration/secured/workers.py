"""Workers on the secured broker: their settings as a SCRAM user, and the ACLs they need."""

from __future__ import annotations

import uuid

from confluent_kafka.admin import AclBinding, AclOperation

from tests.integration.secured.cluster import (
    SecuredCluster,
    group_acl,
    topic_acl,
    transactional_id_acl,
)
from tests.worker_support import WorkerProcess

READ, WRITE = AclOperation.READ, AclOperation.WRITE
EXIT_WAIT_S = 90  # bound on how long a worker that cannot work may take to stop


def worker_env(secured: SecuredCluster, user: str, password: str, artifact_path) -> dict:
    """Topics made by the admin, and the worker's settings as ``user``."""
    return {
        "STREAM_OD_INPUT_TOPIC": secured.create_topic("in", partitions=2),
        "STREAM_OD_ALERTS_TOPIC": secured.create_topic("alerts"),
        "STREAM_OD_DEAD_LETTER_TOPIC": secured.create_topic("dlq"),
        "STREAM_OD_SCORES_TOPIC": secured.create_topic("scores"),
        "STREAM_OD_GROUP_ID": f"group-{uuid.uuid4().hex[:8]}",
        "STREAM_OD_INSTANCE_ID": uuid.uuid4().hex[:8],
        "STREAM_OD_BOOTSTRAP_SERVERS": secured.bootstrap,
        "STREAM_OD_KAFKA": secured.kafka_env(user, password),
        "STREAM_OD_ARTIFACT_PATH": str(artifact_path),
        "STREAM_OD_MAX_BATCH_RECORDS": "500",
    }


def worker_acls(user: str, env: dict) -> dict[str, tuple[AclBinding, str]]:
    """Each ACL the worker needs, and what its message must name when that ACL is missing
    (WRITE on the scores topic only when it has one)."""
    e, group = env, env["STREAM_OD_GROUP_ID"]
    txid = f"stream-od-{group}-{env['STREAM_OD_INSTANCE_ID']}"
    acls = {
        "READ input topic": (
            topic_acl(user, e["STREAM_OD_INPUT_TOPIC"], READ),
            f"topic {e['STREAM_OD_INPUT_TOPIC']!r}",
        ),
        "READ group": (group_acl(user, group, READ), f"consumer group {group!r}"),
        "WRITE alerts topic": (
            topic_acl(user, e["STREAM_OD_ALERTS_TOPIC"], WRITE),
            f"topic {e['STREAM_OD_ALERTS_TOPIC']!r}",
        ),
        "WRITE dead-letter topic": (
            topic_acl(user, e["STREAM_OD_DEAD_LETTER_TOPIC"], WRITE),
            f"topic {e['STREAM_OD_DEAD_LETTER_TOPIC']!r}",
        ),
        "WRITE transactional id": (transactional_id_acl(user, txid, WRITE), txid),
    }
    if e.get("STREAM_OD_SCORES_TOPIC"):
        acls["WRITE scores topic"] = (
            topic_acl(user, e["STREAM_OD_SCORES_TOPIC"], WRITE),
            f"topic {e['STREAM_OD_SCORES_TOPIC']!r}",
        )
    return acls


def stopped(worker: WorkerProcess) -> tuple[int, str]:
    """``(exit code, log)`` of a worker expected to stop on its own."""
    return worker.proc.wait(timeout=EXIT_WAIT_S), worker.log()


def restore_group_acl(user: str, env: dict) -> dict[str, tuple[AclBinding, str]]:
    """DESCRIBE on ``<group_id>.restore``: the group of the assign-only consumer that reads
    state back on assignment (the suppression changelog; the input, for traffic windows)."""
    group = env["STREAM_OD_GROUP_ID"] + ".restore"
    return {
        "DESCRIBE restore group": (
            group_acl(user, group, AclOperation.DESCRIBE),
            f"consumer group {group!r}",
        )
    }


def suppression_env(secured: SecuredCluster, env: dict) -> dict:
    """Alert suppression on, its changelog made by the admin (compacted, as many partitions as
    the input), so the worker needs no CREATE."""
    partitions = len(
        secured.admin.list_topics(env["STREAM_OD_INPUT_TOPIC"], timeout=10)
        .topics[env["STREAM_OD_INPUT_TOPIC"]]
        .partitions
    )
    return env | {
        "STREAM_OD_SUPPRESS_WINDOW_S": "60",
        "STREAM_OD_SUPPRESS_BY": '["service"]',  # KDD records have no addresses
        "STREAM_OD_SUPPRESSION_CHANGELOG_TOPIC": secured.create_topic(
            "suppress", partitions=partitions, config={"cleanup.policy": "compact"}
        ),
    }


def suppression_acls(user: str, env: dict) -> dict[str, tuple[AclBinding, str]]:
    """What suppression adds to :func:`worker_acls`: READ and WRITE on the changelog topic,
    and DESCRIBE on the restore group that reads it back."""
    changelog = env["STREAM_OD_SUPPRESSION_CHANGELOG_TOPIC"]
    return {
        "READ changelog topic": (topic_acl(user, changelog, READ), f"topic {changelog!r}"),
        "WRITE changelog topic": (topic_acl(user, changelog, WRITE), f"topic {changelog!r}"),
    } | restore_group_acl(user, env)


def windows_stage_env(secured: SecuredCluster, env: dict) -> dict:
    """A windows stage (no scoring, so no scores topic): its output topic made by the admin."""
    env = {k: v for k, v in env.items() if k != "STREAM_OD_SCORES_TOPIC"}
    return env | {
        "STREAM_OD_WINDOWS_STAGE_TOPIC": secured.create_topic("by-resp", partitions=2),
        "STREAM_OD_WINDOWS_STAGE_ROLES": '["src"]',
        "STREAM_OD_WINDOWS_STAGE_KEY": "id.resp_h",
    }


def windows_stage_acls(user: str, env: dict) -> dict[str, tuple[AclBinding, str]]:
    """What a windows stage needs: :func:`worker_acls` without the alerts and scores topics
    (it scores nothing), WRITE on the stage's topic, and DESCRIBE on the restore group that
    rebuilds the windows."""
    stage = env["STREAM_OD_WINDOWS_STAGE_TOPIC"]
    scoring = ("WRITE alerts topic", "WRITE scores topic")
    return (
        {k: v for k, v in worker_acls(user, env).items() if k not in scoring}
        | {"WRITE windows stage topic": (topic_acl(user, stage, WRITE), f"topic {stage!r}")}
        | restore_group_acl(user, env)
    )
