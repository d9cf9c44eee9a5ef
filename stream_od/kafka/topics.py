"""Topic checks and creation with the admin API, and the start-up checks every client runs.

A client that cannot work should say why at once, in words that lead to the fix: a wrong SASL
password or TLS CA is not an unreachable broker, and a topic the principal may not see is not a
missing topic.  :func:`connect` tells authentication and TLS failures (librdkafka's reason, at
the first attempt) from a broker that does not answer (after ``timeout``); :func:`check_access`
then asks the brokers which operations the principal may perform on each topic and group it
needs (KIP-430 authorized operations), so a missing ACL is named before the first record.
See docs/security.md for the ACLs of each component.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

from stream_od.errors import ConfigError

#: What the worker's messages call the bootstrap setting; the CLIs pass ``--bootstrap-servers``.
BOOTSTRAP_SETTING = "bootstrap_servers (STREAM_OD_BOOTSTRAP_SERVERS)"
SECURITY_DOC = "docs/security.md"

# Errors that waiting does not clear: wrong credentials (here), a failed TLS handshake (below).
_AUTH_ERRORS = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})
_TLS_ERRORS = frozenset({KafkaError._SSL})


def connect(
    client_config: dict[str, Any],
    *,
    timeout: float = 10.0,
    bootstrap_setting: str = BOOTSTRAP_SETTING,
) -> AdminClient:
    """An admin client that has reached the cluster and authenticated.

    Raises :class:`ConfigError` at the first authentication or TLS failure, with librdkafka's
    reason (retrying cannot fix a password), and after ``timeout`` seconds for brokers that do
    not answer.  The metadata request is cut into short slices because librdkafka reports the
    authentication failure through the error callback while the request keeps waiting."""
    errors: list[KafkaError] = []
    # Quiet: every failure librdkafka would log is in the message raised below.  (Typed Any:
    # the stubs allow only plain values, but librdkafka also takes callbacks such as error_cb.)
    config: dict[str, Any] = {"log_level": 0, **client_config, "error_cb": errors.append}
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout
    last: KafkaError | None = None
    while True:
        try:
            admin.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            return admin
        except KafkaException as exc:
            last = exc.args[0]
        admin.poll(0)  # serves the error callback
        for err in errors:
            if err.code() in _AUTH_ERRORS:
                raise ConfigError(_authentication_message(err, client_config)) from None
            if _is_tls_failure(err):
                raise ConfigError(_tls_message(err, client_config)) from None
        if time.monotonic() >= deadline:
            raise ConfigError(
                _unreachable_message(errors, last, client_config, timeout, bootstrap_setting)
            ) from None


def _is_tls_failure(err: KafkaError) -> bool:
    """A handshake that failed, or a TLS alert from the broker (a client certificate it
    refused or wanted), which librdkafka reports as a transport error with OpenSSL's text."""
    return err.code() in _TLS_ERRORS or (
        err.code() == KafkaError._TRANSPORT and "SSL routines" in (err.str() or "")
    )


def _authentication_message(err: KafkaError, config: dict[str, Any]) -> str:
    user, mechanism = config.get("sasl.username"), config.get("sasl.mechanism", "GSSAPI")
    who = f"as user {user!r} " if user else ""
    return (
        f"authentication failed at {config.get('bootstrap.servers')} {who}({mechanism}): "
        f"{reason(err)}; check sasl.username, sasl.password and sasl.mechanism in "
        f"STREAM_OD_KAFKA (the user must exist on the cluster for that mechanism; "
        f"{SECURITY_DOC})"
    )


def _tls_message(err: KafkaError, config: dict[str, Any]) -> str:
    return (
        f"TLS handshake with {config.get('bootstrap.servers')} failed: {reason(err)}; check "
        "ssl.ca.location in STREAM_OD_KAFKA (the CA certificate that signed the brokers' "
        "certificates), that the address matches their certificates, and, where the "
        "listener wants a client certificate, ssl.certificate.location and ssl.key.location "
        f"({SECURITY_DOC})"
    )


def _unreachable_message(
    errors: list[KafkaError],
    last: KafkaError | None,
    config: dict[str, Any],
    timeout: float,
    bootstrap_setting: str,
) -> str:
    transport = [e for e in errors if e.code() not in (KafkaError._ALL_BROKERS_DOWN,)]
    cause = reason(transport[-1]) if transport else (reason(last) if last else "no answer")
    protocol = config.get("security.protocol", "plaintext")
    return (
        f"cannot reach Kafka at {config.get('bootstrap.servers')} within {timeout:g} s "
        f"({cause}); check {bootstrap_setting}, that the brokers are up, and that "
        f"security.protocol ({protocol}) in STREAM_OD_KAFKA is what their listener expects "
        "(a listener drops a client that speaks another protocol without saying why)"
    )


def reason(err: KafkaError) -> str:
    """librdkafka's words for an error, else its name."""
    return err.str() or err.name()


def principal(client_config: dict[str, Any]) -> str:
    """The principal the brokers see, as far as the client settings tell: ``User:<name>`` with
    SASL, ``User:ANONYMOUS`` on a plaintext listener; for mutual TLS it is the certificate's."""
    protocol = str(client_config.get("security.protocol", "plaintext")).lower()
    if protocol.startswith("sasl") and client_config.get("sasl.username"):
        return f"User:{client_config['sasl.username']}"
    if protocol == "plaintext":
        return "User:ANONYMOUS"
    return "this client's principal"


@dataclass(frozen=True)
class Need:
    """One permission a component needs: ``operation`` on a topic or consumer group, and the
    setting that names the resource (said in the message, so the operator knows what to fix)."""

    resource: Literal["topic", "group"]
    name: str
    operation: Literal["READ", "WRITE", "DESCRIBE"]
    setting: str
    #: a topic the component creates when it is missing (its CREATE is checked then): only
    #: the permission on it is checked here, and its absence is no problem
    may_be_missing: bool = False


def check_access(
    client_config: dict[str, Any],
    needs: Iterable[Need],
    *,
    timeout: float = 10.0,
    bootstrap_setting: str = BOOTSTRAP_SETTING,
) -> AdminClient:
    """Connect (:func:`connect`), then raise :class:`ConfigError` naming every topic that is
    missing and every permission that is not granted; returns the connected admin client."""
    admin = connect(client_config, timeout=timeout, bootstrap_setting=bootstrap_setting)
    problems = access_problems(admin, principal(client_config), list(needs), timeout=timeout)
    if problems:
        raise ConfigError("; ".join(problems))
    return admin


def access_problems(
    admin: AdminClient, who: str, needs: list[Need], *, timeout: float = 10.0
) -> list[str]:
    """What stands between ``who`` and ``needs``, one sentence each (empty when nothing does).

    A topic the principal may not describe looks the same whether it exists or not (the broker
    does not tell), so it is reported as a permission, never as a missing topic.  When a broker
    does not report authorized operations, the check passes and the client finds out later."""
    problems: list[str] = []
    topics = [n for n in needs if n.resource == "topic"]
    if topics:
        futures = admin.describe_topics(
            TopicCollection(sorted({n.name for n in topics})), include_authorized_operations=True
        )
        for need in topics:
            problems += _check(need, who, futures[need.name], timeout)
    groups = [n for n in needs if n.resource == "group"]
    if groups:
        futures = admin.describe_consumer_groups(
            sorted({n.name for n in groups}), include_authorized_operations=True
        )
        for need in groups:
            problems += _check(need, who, futures[need.name], timeout)
    return problems


def _check(need: Need, who: str, future: Future, timeout: float) -> list[str]:
    """The problem with one need, from the future of its topic or group description."""
    kind = "topic" if need.resource == "topic" else "consumer group"
    grant = grant_hint(need.operation, need.resource, need.name, who)
    try:
        ops = future.result(timeout).authorized_operations
    except KafkaException as exc:
        code = exc.args[0].code()
        if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
            if need.may_be_missing:
                return []
            return [
                f"topic {need.name!r} does not exist ({need.setting}): create it, or fix "
                f"{need.setting}"
            ]
        if code in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED):
            return [f"{who} is not authorized on {kind} {need.name!r} ({need.setting}): {grant}"]
        return []  # anything else: not a verdict on permissions; the client will say
    names = {op.name for op in ops} if ops is not None else None
    if names is None or need.operation in names or "ALL" in names:
        return []
    return [f"{who} may not {need.operation} {kind} {need.name!r} ({need.setting}): {grant}"]


def grant_hint(operation: str, resource: str, name: str, who: str) -> str:
    """How to fix a missing permission, in the words of kafka-acls (``--operation``, resource)."""
    return f"grant {operation} on {resource.capitalize()}:{name} to {who} ({SECURITY_DOC})"


def create_problem(
    admin: AdminClient, topic: NewTopic, who: str, setting: str, *, timeout: float = 10.0
) -> str | None:
    """Why ``who`` could not create ``topic``, found without creating it (a validate-only
    CreateTopics, which the brokers authorize like the real one); None when it could."""
    try:
        admin.create_topics([topic], validate_only=True)[topic.topic].result(timeout)
    except KafkaException as exc:
        err = exc.args[0]
        if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return None
        if err.code() in (
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
            KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        ):
            return (
                f"topic {topic.topic!r} ({setting}) does not exist and {who} may not create "
                f"it: create it, or {grant_hint('CREATE', 'topic', topic.topic, who)}"
            )
        return f"cannot create topic {topic.topic!r} ({setting}): {reason(err)}"
    return None


def missing_topics(
    client_config: dict[str, Any], names: Iterable[str], timeout: float = 10.0
) -> list[str]:
    """The names among ``names`` that do not exist on the cluster."""
    admin = connect(client_config, timeout=timeout)
    present = admin.list_topics(timeout=timeout).topics
    return [n for n in names if n not in present]


def ensure_topics(
    client_config: dict[str, Any],
    specs: dict[str, int],
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create each ``{name: partitions}`` topic that is missing, and wait until it has leaders."""
    admin = AdminClient(client_config)
    missing = missing_topics(client_config, specs)
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(n, num_partitions=specs[n], replication_factor=1, config=config or {})
                for n in missing
            ]
        )
        for future in futures.values():
            try:
                future.result(timeout=timeout)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
    if not have_leaders(admin, specs, timeout):
        raise TimeoutError(f"topics {sorted(specs)} have no leaders after {timeout} s")


def have_leaders(admin: AdminClient, names: Iterable[str], timeout: float) -> bool:
    """Wait until every partition of each of ``names`` has a leader (a topic just created has
    none for a moment); False when that took longer than ``timeout``."""
    names = list(names)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = admin.list_topics(timeout=5).topics
        if all(
            n in meta
            and meta[n].error is None
            and meta[n].partitions
            and all(p.leader >= 0 for p in meta[n].partitions.values())
            for n in names
        ):
            return True
        time.sleep(0.1)
    return False


def delete_topics(
    client_config: dict[str, Any], names: Iterable[str], timeout: float = 30.0
) -> None:
    """Delete ``names``; a topic that is already gone is not an error."""
    names = list(names)
    if not names:
        return
    admin = AdminClient(client_config)  # alive until the futures resolve
    for future in admin.delete_topics(names, operation_timeout=10).values():
        try:
            future.result(timeout=timeout)
        except KafkaException:
            pass
