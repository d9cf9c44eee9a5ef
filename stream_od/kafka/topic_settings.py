"""What the worker needs of its output topics' settings, read from the brokers at start.

Three topic settings can stop a partition for good while every record is well formed: the
batch that carries the refused record fails, is retried, fails the same way after a restart,
and the partition behind it goes no further.

* ``cleanup.policy`` with ``compact``: the broker refuses a record without a key
  (INVALID_RECORD; the dead letter of a keyless record has none), and compaction would delete
  every alert but the newest of each key anyway.  Refused at start, naming the setting.
* ``max.message.bytes`` below what the worker may write (``max_output_bytes``): an alert of a
  large record is refused (MSG_SIZE_TOO_LARGE).  Refused at start.  Below the producer's
  ``batch.size`` (librdkafka does not split a refused batch), a batch of small records is
  refused too: the worker's batches are sized to the smallest limit instead (:func:`batch_size`).
* ``message.timestamp.before.max.ms`` / ``after.max.ms`` (``difference.max.ms`` before Kafka
  4.0) with CreateTime on a windows stage's topic, which carries its input's timestamps: one
  record replayed from last month is refused (INVALID_TIMESTAMP).  The stage's timestamps are
  clamped into what the topic accepts (:class:`StampWindow`).

A principal without DESCRIBE_CONFIGS on the topics cannot read them: nothing is checked then,
and the run-time error says which setting to look at (``stream_od.kafka.explain.fix``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, ConfigResource

from stream_od.config import OUTPUT_FRAMING_BYTES as FRAMING_BYTES

#: librdkafka's default batch.size.
LIBRDKAFKA_BATCH_SIZE = 1_000_000
#: Kafka's value for "no limit" (Long.MAX_VALUE), the default of the timestamp limits.
NO_LIMIT = 2**63 - 1
#: How far inside a timestamp limit a clamped stamp is put: the broker compares it with its
#: own clock when the record arrives, which is later than when it was stamped.
STAMP_MARGIN_MS = 60_000

READ = ("cleanup.policy", "max.message.bytes", "message.timestamp.type")
STAMP_LIMITS = (
    "message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms",
    "message.timestamp.difference.max.ms",
)


def read_configs(
    admin: AdminClient, topics: Iterable[str], timeout: float = 10.0
) -> dict[str, dict[str, str]]:
    """Each topic's settings that matter here, as the brokers apply them (defaults included).
    Raises KafkaException when one cannot be read (no DESCRIBE_CONFIGS, a missing topic)."""
    names = sorted(set(topics))
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in names])
    out: dict[str, dict[str, str]] = {}
    for resource, future in futures.items():
        entries = future.result(timeout)
        out[resource.name] = {
            k: e.value for k, e in entries.items() if k in READ + STAMP_LIMITS and e.value
        }
    return out


def problems(
    configs: Mapping[str, Mapping[str, str]], written: Mapping[str, str], max_output_bytes: int
) -> list[str]:
    """What in the output topics' settings would stop a partition, one sentence each with the
    fix; ``written`` maps the setting that names each topic to it (``alerts_topic``: ...)."""
    out: list[str] = []
    for setting, topic in written.items():
        config = configs.get(topic, {})
        env = "STREAM_OD_" + setting.upper()
        policy = config.get("cleanup.policy", "delete")
        if "compact" in policy.split(","):
            out.append(
                f"topic {topic!r} ({env}) has cleanup.policy={policy}: a compacted topic "
                "refuses records without a key (the dead letter of a keyless record has none) "
                "and keeps only the newest record of each key, deleting the others; set its "
                "cleanup.policy to delete"
            )
        limit = int(config.get("max.message.bytes", NO_LIMIT))
        if max_output_bytes + FRAMING_BYTES > limit:
            out.append(
                f"topic {topic!r} ({env}) takes records up to max.message.bytes={limit}, "
                f"below what the worker may write (STREAM_OD_MAX_OUTPUT_BYTES="
                f"{max_output_bytes}, plus {FRAMING_BYTES} for framing): raise the topic's "
                f"max.message.bytes to at least {max_output_bytes + FRAMING_BYTES}, or lower "
                "STREAM_OD_MAX_OUTPUT_BYTES (and STREAM_OD_MAX_RECORD_BYTES, at most half of it)"
            )
    return out


def batch_size(
    configs: Mapping[str, Mapping[str, str]], topics: Iterable[str], configured: int | None
) -> int | None:
    """The producer's batch.size when the one it would use (``configured``, else librdkafka's
    default) is above the smallest ``max.message.bytes`` of ``topics``; None when it is not."""
    limits = [int(configs.get(t, {}).get("max.message.bytes", NO_LIMIT)) for t in topics]
    smallest = min(limits, default=NO_LIMIT)
    current = configured if configured is not None else LIBRDKAFKA_BATCH_SIZE
    return smallest if smallest < current else None


@dataclass(frozen=True)
class StampWindow:
    """The CreateTime timestamps a topic accepts: from ``before_ms`` before the broker's clock
    to ``after_ms`` after it."""

    before_ms: int
    after_ms: int

    @classmethod
    def of(cls, config: Mapping[str, str]) -> StampWindow | None:
        """The topic's window, None when it takes any timestamp (LogAppendTime replaces them;
        the limits' defaults are Long.MAX_VALUE)."""
        if config.get("message.timestamp.type", "CreateTime") != "CreateTime":
            return None
        legacy = int(config.get("message.timestamp.difference.max.ms", NO_LIMIT))
        before = min(int(config.get("message.timestamp.before.max.ms", NO_LIMIT)), legacy)
        after = min(int(config.get("message.timestamp.after.max.ms", NO_LIMIT)), legacy)
        if before >= NO_LIMIT and after >= NO_LIMIT:
            return None
        return cls(before, after)

    def clamp(self, stamp_ms: int, now_ms: int | None = None) -> int:
        """``stamp_ms`` moved inside the window (by a margin, up to half of it), when it is out."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        low = now - self.before_ms + min(STAMP_MARGIN_MS, self.before_ms // 2)
        high = now + self.after_ms - min(STAMP_MARGIN_MS, self.after_ms // 2)
        return min(max(stamp_ms, low), high)
