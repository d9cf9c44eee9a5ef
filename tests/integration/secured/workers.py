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
    """Each ACL the worker needs, and what its message must name when that ACL is missing."""
    e, group = env, env["STREAM_OD_GROUP_ID"]
    txid = f"stream-od-{group}-{env['STREAM_OD_INSTANCE_ID']}"
    return {
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
        "WRITE scores topic": (
            topic_acl(user, e["STREAM_OD_SCORES_TOPIC"], WRITE),
            f"topic {e['STREAM_OD_SCORES_TOPIC']!r}",
        ),
        "WRITE transactional id": (transactional_id_acl(user, txid, WRITE), txid),
    }


def stopped(worker: WorkerProcess) -> tuple[int, str]:
    """``(exit code, log)`` of a worker expected to stop on its own."""
    return worker.proc.wait(timeout=EXIT_WAIT_S), worker.log()
