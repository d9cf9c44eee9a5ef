"""A registry on a compacted Kafka topic (``stream-od.models`` by default).

One message per version: key = the version, value = the packed artifact
(:mod:`stream_od.registry.pack`, at most 4 MiB), headers ``version`` and ``sha256`` (hex sha256
of the value).  The topic has one partition, so offsets order the versions; compaction keeps
the last message per version.  The latest version is the highest offset whose message
verifies; a message that does not is refused and the one before it is tried.

Permissions (docs/security.md): the publisher needs WRITE on the topic (and CREATE only to
create it); a reader needs READ on the topic and DESCRIBE on its consumer group, ``group_id``,
which is fixed (``<worker group>.models`` in a worker) so that one LITERAL ACL covers it: the
reader assigns the partition itself and never joins the group or commits, but the client still
looks up the group's coordinator.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from stream_od.errors import ConfigError
from stream_od.kafka import clients
from stream_od.kafka.messages import header_text, record_headers, record_offset
from stream_od.kafka.topics import (
    Need,
    access_problems,
    connect,
    create_problem,
    grant_hint,
    principal,
)
from stream_od.registry.directory import check_version, manifest_version
from stream_od.registry.errors import Refused, RegistryError
from stream_od.registry.pack import MAX_PACKED_BYTES, pack, unpack_files
from stream_od.registry.signing import Trust
from stream_od.registry.verify import Verified, verify_files

log = logging.getLogger("stream_od.registry")

DEFAULT_TOPIC = "stream-od.models"
#: The readers' consumer group when none is given (a worker passes ``<group_id>.models``).
DEFAULT_READER_GROUP = "stream-od.models"
VERSION_HEADER = "version"
SHA256_HEADER = "sha256"
# Room for the headers and the record batch around a value at the size limit.
MESSAGE_BYTES = MAX_PACKED_BYTES + 64 * 1024


@dataclass(frozen=True)
class PublishedMessage:
    """One message of the models topic, checked against its own headers."""

    version: str
    offset: int
    value: bytes


@dataclass(frozen=True)
class Entry:
    """A message the reader has seen: offset, ``version`` header, and the message itself
    unless it was dropped to bound memory (``None``)."""

    offset: int
    version: str
    message: Message | None


def check_message(msg: Message) -> PublishedMessage:
    """Headers, key, size and sha256 of a models-topic message; raises :class:`Refused`."""
    where = f"{msg.topic()}@{msg.offset()}"
    headers = record_headers(msg)
    value = msg.value() or b""
    try:
        version = check_version(header_text(headers.get(VERSION_HEADER), ""))
        digest = header_text(headers.get(SHA256_HEADER), "")
    except (RegistryError, UnicodeDecodeError) as exc:
        raise Refused(
            "malformed", f"{where}: no usable {VERSION_HEADER!r} header ({exc})"
        ) from None
    if (msg.key() or b"").decode(errors="replace") != version:
        raise Refused("malformed", f"{where}: key {msg.key()!r} is not the version {version}")
    if len(value) > MAX_PACKED_BYTES:
        raise Refused(
            "malformed", f"{where}: {len(value):,} bytes, over the {MAX_PACKED_BYTES:,}-byte limit"
        )
    if hashlib.sha256(value).hexdigest() != digest:
        raise Refused(
            "integrity",
            f"{where} ({version}): sha256 of the message does not match "
            f"its {SHA256_HEADER!r} header",
        )
    return PublishedMessage(version, record_offset(msg), value)


def verify_message(msg: Message, key: Trust | bytes | None) -> Verified:
    """A models-topic message checked end to end, on its bytes only (nothing is written to
    disk): headers and sha256, a safe unpack, signature and sums, and the manifest's version
    against the message's.  Raises :class:`Refused`."""
    published = check_message(msg)
    where = f"{msg.topic()}@{published.offset}"
    verified = verify_files(unpack_files(published.value), key, where)
    if verified.version != published.version:
        raise Refused(
            "integrity",
            f"{where}: header says {published.version}, the manifest {verified.version}",
        )
    return verified


class TopicRegistry:
    def __init__(
        self,
        topic: str,
        client_config: dict[str, Any],
        *,
        group_id: str = DEFAULT_READER_GROUP,
        bootstrap_setting: str = "--bootstrap-servers",
    ):
        """``client_config``: librdkafka settings shared by every client (bootstrap, security);
        ``group_id``: the readers' consumer group; ``bootstrap_setting``: how messages name
        the bootstrap address (the CLI option, or the worker's setting)."""
        self.topic = topic
        self.config = dict(client_config)
        self.group_id = group_id
        self.bootstrap_setting = bootstrap_setting

    def __repr__(self) -> str:
        return f"topic registry {self.topic}"

    def _new_topic(self) -> NewTopic:
        return NewTopic(
            self.topic,
            num_partitions=1,
            replication_factor=-1,
            config={"cleanup.policy": "compact", "max.message.bytes": str(MESSAGE_BYTES)},
        )

    def _exists(self, admin: AdminClient, timeout: float) -> bool:
        """Whether the topic exists; raises :class:`ConfigError` when this principal may not
        see it (the broker then does not say whether it exists)."""
        meta = admin.list_topics(self.topic, timeout=timeout).topics.get(self.topic)
        err = meta.error if meta is not None else None
        if err is None:
            return True
        if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return False
        who = principal(self.config)
        if err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            raise ConfigError(
                f"{who} is not authorized on models topic {self.topic!r}: "
                f"{grant_hint('WRITE', 'topic', self.topic, who)} to publish "
                "(and CREATE too if publish is to create it)"
            )
        raise RegistryError(f"models topic {self.topic}: {err}")

    def check_publish_access(self, timeout: float = 10.0) -> None:
        """Fail before anything is trained or packed if publishing cannot work: connect and
        authenticate, then WRITE on the topic when it exists, or permission to create it when it
        does not (checked without creating it).  Raises :class:`ConfigError`."""
        admin = connect(self.config, timeout=timeout, bootstrap_setting=self.bootstrap_setting)
        who = principal(self.config)
        if self._exists(admin, timeout):
            problems = access_problems(
                admin,
                who,
                [Need("topic", self.topic, "WRITE", "the models topic")],
                timeout=timeout,
            )
            if problems:
                raise ConfigError("; ".join(problems))
            return
        problem = create_problem(admin, self._new_topic(), who, "the models topic", timeout=timeout)
        if problem:
            raise ConfigError(problem)

    def ensure_topic(self, timeout: float = 30.0) -> None:
        """Create the topic (1 partition, compacted, large enough messages) unless it exists.
        An existing topic needs no CREATE permission: it is looked up before anything is
        created."""
        admin = connect(
            self.config, timeout=min(timeout, 10.0), bootstrap_setting=self.bootstrap_setting
        )
        if not self._exists(admin, timeout):
            try:
                admin.create_topics([self._new_topic()])[self.topic].result(timeout)
            except KafkaException as exc:
                err = exc.args[0]
                if err.code() in (
                    KafkaError.TOPIC_AUTHORIZATION_FAILED,
                    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                ):
                    who = principal(self.config)
                    raise ConfigError(
                        f"models topic {self.topic!r} does not exist and {who} may not create "
                        f"it: create it (1 partition, cleanup.policy=compact, max.message.bytes="
                        f"{MESSAGE_BYTES}), or {grant_hint('CREATE', 'topic', self.topic, who)}"
                    ) from None
                if err.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise RegistryError(f"cannot create topic {self.topic}: {exc}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            meta = admin.list_topics(self.topic, timeout=5).topics.get(self.topic)
            if (
                meta
                and meta.error is None
                and meta.partitions
                and all(p.leader >= 0 for p in meta.partitions.values())
            ):
                if len(meta.partitions) != 1:
                    raise RegistryError(
                        f"{self.topic} has {len(meta.partitions)} partitions; a "
                        "models topic needs exactly one (offsets order versions)"
                    )
                return
            time.sleep(0.1)
        raise RegistryError(f"topic {self.topic} has no leader after {timeout} s")

    def publish(self, artifact_dir, *, timeout: float = 30.0) -> tuple[str, int]:
        """Produce the packed artifact; returns ``(version, offset)`` once the broker has it."""
        import pathlib

        version = manifest_version(pathlib.Path(artifact_dir))
        value = pack(artifact_dir)
        self.ensure_topic()
        producer = clients.models_producer(self.config, MESSAGE_BYTES)
        result: dict[str, Any] = {}

        def on_delivery(err, msg):
            result["err"], result["offset"] = err, (msg.offset() if err is None else None)

        producer.produce(
            self.topic,
            key=version.encode(),
            value=value,
            on_delivery=on_delivery,
            headers=[
                (VERSION_HEADER, version.encode()),
                (SHA256_HEADER, hashlib.sha256(value).hexdigest().encode()),
            ],
        )
        remaining = producer.flush(timeout)
        err = result.get("err")
        if err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            who = principal(self.config)
            raise ConfigError(
                f"publishing {version}: {who} may not write to models topic "
                f"{self.topic!r}: {grant_hint('WRITE', 'topic', self.topic, who)}"
            )
        if remaining or err is not None:
            raise RegistryError(
                f"publishing {version} to {self.topic} failed: {err or 'not acknowledged in time'}"
            )
        return version, int(result["offset"])

    def reader(self) -> TopicReader:
        return TopicReader(self.topic, self.config, group_id=self.group_id)


def _models_consumer(config: dict[str, Any], group_id: str) -> Consumer:
    return clients.models_consumer(config, group_id, MESSAGE_BYTES)


class TopicReader:
    """Reads the models topic forward from its start; each :meth:`fetch` returns what arrived
    since the previous one (up to the high watermark at call time)."""

    def __init__(self, topic: str, config: dict[str, Any], *, group_id: str = DEFAULT_READER_GROUP):
        self.topic = topic
        self.config = config
        self.group_id = group_id
        self.tp = TopicPartition(topic, 0)
        self.consumer = _models_consumer(config, group_id)
        self.consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])

    def _high_watermark(self, timeout: float) -> int:
        meta = self.consumer.list_topics(self.topic, timeout=timeout).topics.get(self.topic)
        if (
            meta is not None
            and meta.error is not None
            and meta.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        ):
            who = principal(self.config)
            raise RegistryError(
                f"{who} is not authorized on models topic {self.topic}: "
                f"{grant_hint('READ', 'topic', self.topic, who)}"
            )
        if meta is None or meta.error is not None:
            raise RegistryError(
                f"models topic {self.topic} not found ({meta.error if meta else 'no metadata'})"
            )
        if len(meta.partitions) != 1:
            raise RegistryError(
                f"{self.topic} has {len(meta.partitions)} partitions; a models "
                "topic needs exactly one"
            )
        return self.consumer.get_watermark_offsets(self.tp, timeout=timeout, cached=False)[1]

    def messages(self, *, timeout: float = 10.0) -> Iterator[Message]:
        """The messages that arrived since the previous call, one at a time in offset order, up
        to the high watermark at call time.  Yielding them one by one lets the caller check
        each and drop it, so a long history is never all in memory.  If reading fails part
        way, the reader goes back to where this call started: the next call sees them again."""
        high = self._high_watermark(timeout)
        start = self.consumer.position([self.tp])[0].offset
        deadline = time.monotonic() + timeout
        try:
            while True:
                pos = self.consumer.position([self.tp])[0].offset
                if high <= 0 or pos >= high:
                    return
                if time.monotonic() > deadline:
                    raise RegistryError(
                        f"reading {self.topic}: at offset {pos} of {high} after {timeout} s"
                    )
                for msg in self.consumer.consume(num_messages=8, timeout=0.5):
                    err = msg.error()
                    if err is not None:
                        raise RegistryError(f"reading {self.topic}: {self._explain(err)}")
                    yield msg
        except (RegistryError, KafkaException):
            self._rewind(start)
            raise

    def _explain(self, err: KafkaError) -> str:
        if err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            who = principal(self.config)
            return (
                f"{who} is not authorized on the models reader's consumer group "
                f"{self.group_id!r}: {grant_hint('DESCRIBE', 'group', self.group_id, who)}"
            )
        return str(err)

    def _rewind(self, offset: int) -> None:
        try:
            self.consumer.seek(
                TopicPartition(self.topic, 0, offset if offset >= 0 else OFFSET_BEGINNING)
            )
        except KafkaException as exc:  # not fetching yet: the position did not move either
            log.debug("models reader: no rewind to %s (%s)", offset, exc)

    def fetch(self, *, timeout: float = 10.0, keep: int | None = None) -> list[Entry]:
        """New messages in offset order.  With ``keep``, only the newest ``keep`` carry their
        message (bounded memory); older entries keep offset and version, and
        :meth:`read_at` fetches them again if they are ever needed."""
        out: list[Entry] = []
        for msg in self.messages(timeout=timeout):
            version = header_text(record_headers(msg).get(VERSION_HEADER), "?", errors="replace")
            out.append(Entry(record_offset(msg), version, msg))
            if keep is not None and len(out) > keep and out[-keep - 1].message is not None:
                dropped = out[-keep - 1]
                out[-keep - 1] = Entry(dropped.offset, dropped.version, None)
        return out

    def read_at(self, offset: int, *, timeout: float = 10.0) -> Message:
        """The message at ``offset`` again, from a short-lived consumer (the reader's own
        position stays where it is).  Raises :class:`Refused` if compaction removed it:
        the topic then holds a newer message for that version."""
        consumer = _models_consumer(self.config, self.group_id)
        try:
            consumer.assign([TopicPartition(self.topic, 0, offset)])
            msg = consumer.poll(timeout)
            if msg is None:
                raise RegistryError(f"reading {self.topic}@{offset}: nothing after {timeout} s")
            err = msg.error()
            if err is not None:
                raise RegistryError(f"reading {self.topic}@{offset}: {self._explain(err)}")
            if msg.offset() != offset:
                raise Refused(
                    "malformed", f"{self.topic}@{offset}: compacted away since it was first read"
                )
            return msg
        finally:
            consumer.close()

    def close(self) -> None:
        self.consumer.close()
