"""What a failed Kafka call means for the worker, and what an operator does about it.

The worker's log and its exit message must say what to fix, not only what librdkafka said:
:func:`fix` adds the remedy to each error an operator can act on (a missing permission, a
topic setting that refuses the records, a deleted topic, a transaction timeout above the
brokers' limit, bad credentials); :func:`cause` names the topic that refused a failed
transaction.  The sets say how the worker treats an error: retrying cannot clear
:data:`NEVER_CLEARS`, :data:`AWAY` means the brokers were unreachable (the producer is
replaced), :data:`FENCING` that another worker took over this one's transactional id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError

from stream_od.kafka import clients

if TYPE_CHECKING:
    from stream_od.config import WorkerSettings


# Errors that retrying cannot fix: someone must grant a permission or fix credentials.
NEVER_CLEARS = frozenset(
    {
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._AUTHENTICATION,
    }
)


def fix(err: KafkaError, topic: str | None) -> str:
    """The error, and what an operator does about it."""
    code = err.code()
    where = f"topic {topic!r}" if topic else "an output topic"
    fixes = {
        KafkaError.TOPIC_AUTHORIZATION_FAILED: (
            f"the worker's principal lacks permission on {where} (it needs WRITE on the "
            "output topics and READ on the input topic; docs/security.md)"
        ),
        KafkaError.GROUP_AUTHORIZATION_FAILED: (
            "the worker's principal lacks READ on its consumer group (group_id); docs/security.md"
        ),
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: (
            "the worker's principal lacks WRITE on its transactional id "
            "(<transactional_id_prefix>-<group_id>-<instance_id>); docs/security.md"
        ),
        KafkaError.CLUSTER_AUTHORIZATION_FAILED: (
            "the worker's principal lacks a cluster permission (IDEMPOTENT_WRITE on older "
            "brokers); docs/security.md"
        ),
        KafkaError.MSG_SIZE_TOO_LARGE: (
            f"{where} refuses records this large: raise its max.message.bytes above "
            "STREAM_OD_MAX_OUTPUT_BYTES, or lower that setting; should each record fit, a "
            "batch of them does not: a max.message.bytes lowered since the worker started "
            "sized its batches (restart it) or below batch.size in STREAM_OD_PRODUCER"
        ),
        # The broker's per-record answer to a key or a timestamp its topic refuses.
        KafkaError.INVALID_RECORD: (
            f"{where} failed to validate them: a topic whose cleanup.policy includes compact "
            "refuses records without a key (and deletes all but the newest of each key: set "
            "it to delete); one with message.timestamp.before.max.ms or after.max.ms refuses "
            "timestamps outside them (a windows stage writes its input's, moved inside the "
            "limits its topic had when the worker started: restart it after changing them)"
        ),
        KafkaError.INVALID_TIMESTAMP: (
            f"{where} refuses the records' timestamps (message.timestamp.before.max.ms or "
            "after.max.ms with CreateTime): a windows stage writes its input's timestamps, "
            "moved inside the limits its topic had when the worker started; restart it after "
            "changing them, or set the topic's message.timestamp.type to LogAppendTime"
        ),
        KafkaError.UNKNOWN_TOPIC_OR_PART: f"{where} does not exist (deleted?): create it again",
        KafkaError._UNKNOWN_TOPIC: f"{where} does not exist (deleted?): create it again",
        KafkaError.INVALID_TRANSACTION_TIMEOUT: (
            "the worker's transaction_timeout_ms (STREAM_OD_TRANSACTION_TIMEOUT_MS) is above "
            "the brokers' transaction.max.timeout.ms: lower the setting, or raise theirs"
        ),
        KafkaError.SASL_AUTHENTICATION_FAILED: (
            "authentication failed: check the SASL user and password in STREAM_OD_KAFKA"
        ),
        KafkaError._AUTHENTICATION: (
            "authentication failed: check the credentials and TLS settings in STREAM_OD_KAFKA"
        ),
    }
    fix = fixes.get(code)
    return f"{err.str() or err.name()} ({fix})" if fix else str(err)


PURGED = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})

# What a batch fails with when the brokers are away: after these, the producer may hold a
# coordinator that is gone for good, so it is replaced (see Worker.process).
AWAY = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
    }
)


def cause(
    err: KafkaError, delivery_errors: list[tuple[str, KafkaError]], topics: Sequence[str]
) -> str:
    """Why a transaction failed, naming the topic that refused it: a record a topic refused
    (records purged because the transaction was aborted are no cause), else the topic the
    transaction error names (the broker refusing to add its partition to the transaction)."""
    refused = [(t, e) for t, e in delivery_errors if e.code() not in PURGED]
    if refused:
        topic, derr = refused[0]
        return f"topic {topic!r} refused {len(refused)} record(s): {fix(derr, topic)}"
    text = err.str() or ""
    named = next((t for t in sorted(topics, key=len, reverse=True) if t in text), None)
    if named is not None:
        return f"topic {named!r} refused the transaction: {fix(err, named)}"
    return fix(err, None)


def reason(err: KafkaError) -> str:
    """The error's name in lower case: the label of ``stream_od_transaction_aborts_total``."""
    return (err.name() or "error").lower()


FENCING = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)


def fatal_message(err: KafkaError, settings: WorkerSettings) -> str:
    if err.code() in FENCING:
        return (
            f"fenced: another worker with transactional id "
            f"{clients.transactional_id(settings)!r} started; each worker needs its own "
            f"instance_id (STREAM_OD_INSTANCE_ID). Not writing anything more. ({err})"
        )
    if err.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        return f"transactional id {clients.transactional_id(settings)!r}: {fix(err, None)}"
    return f"fatal Kafka error: {fix(err, None)}"
