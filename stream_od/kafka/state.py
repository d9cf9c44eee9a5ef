"""Reading a partition's state back from Kafka before a worker scores it.

A worker that takes a partition over (a start, a rebalance, a batch aborted and redone) scores
its next record only once the state that record's score depends on is what an uninterrupted
run would hold at the committed offset:

* **traffic windows** are rebuilt from the partition's own records before that offset
  (:func:`stream_od.kafka.tail.tail_chunks` reads back the schema's window span), a chunk at a
  time, so memory stays bounded however busy the partition;
* **suppression windows** are read from their changelog, written in the same transactions as
  the alerts and offsets, so it is exactly as of the committed offsets.

Both read with an assign-only consumer of their own (``<group>.restore``), which never joins the
worker's group nor commits.  A failure to read either stops the worker with what to fix: a
missing permission (exit 3, naming the ACL) or brokers away (exit 4); scoring on without the
state would give scores an uninterrupted run would not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from stream_od.errors import EXIT_STUCK, EXIT_UNREACHABLE, FatalWorkerError
from stream_od.kafka import clients

if TYPE_CHECKING:
    from stream_od.alerts.volume import AlertVolume
    from stream_od.config import WorkerSettings
    from stream_od.metrics import WorkerMetrics
    from stream_od.records import RecordDecoder

log = logging.getLogger("stream_od.worker")  # its lines are the worker's, as before the move


class StateReader:
    """Reads the per-partition state of one worker back (its settings name the group, the
    changelog topic and how long to keep trying; its metrics time each restore)."""

    def __init__(self, settings: WorkerSettings, metrics: WorkerMetrics):
        self.settings = settings
        self.metrics = metrics

    def config(self) -> dict[str, Any]:
        """A consumer for reading state back: assigns partitions itself, never joins the group
        nor commits."""
        config = clients.consumer_config(self.settings)
        config.pop("group.instance.id", None)
        config["group.id"] = clients.restore_group_id(self.settings)
        return config

    def failed(self, exc: BaseException, what: str, topic: str) -> FatalWorkerError:
        """Why state could not be read back: a missing permission will not clear by itself
        (exit 3, naming the ACL to grant); anything else is the brokers away (exit 4)."""
        err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
        code = err.code() if isinstance(err, KafkaError) else None
        if code == KafkaError.GROUP_AUTHORIZATION_FAILED:
            group = clients.restore_group_id(self.settings)
            return FatalWorkerError(
                f"could not read {what}: {exc}; the worker's principal needs DESCRIBE on "
                f"Group:{group} (<STREAM_OD_GROUP_ID>.restore, its reader of state; "
                "docs/security.md)",
                exit_code=EXIT_STUCK,
            )
        if code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            return FatalWorkerError(
                f"could not read {what}: {exc}; the worker needs READ on it (grant READ on "
                f"Topic:{topic} to its principal; docs/security.md)",
                exit_code=EXIT_STUCK,
            )
        return FatalWorkerError(
            f"could not read {what}: {exc}; the worker needs READ on it and the brokers reachable",
            exit_code=EXIT_UNREACHABLE,
        )

    def suppression(self, volume: AlertVolume, partitions: Sequence[TopicPartition]) -> None:
        """Read each partition's suppression state back from the changelog into ``volume``,
        before its first batch: as of the committed offsets, since both were written in one
        transaction."""
        from stream_od.kafka.changelog import read_changelogs

        topic = self.settings.suppression_changelog_topic
        t0 = time.perf_counter()
        try:
            read = read_changelogs(
                self.config(),
                topic,
                [tp.partition for tp in partitions],
                timeout_s=self.settings.kafka_retry_timeout_s,
            )
        except (KafkaException, TimeoutError) as exc:
            numbers = sorted(tp.partition for tp in partitions)
            raise self.failed(exc, f"the suppression changelog {topic}{numbers}", topic) from exc
        for tp in partitions:
            entries = read[tp.partition]
            state = volume.partition((tp.topic, tp.partition))
            state.restore(entries)
            log.info(
                "restored %d suppression windows of %s[%d] from %d changelog records",
                len(state),
                tp.topic,
                tp.partition,
                len(entries),
            )
        self.metrics.state_restore_seconds.labels("suppression").observe(time.perf_counter() - t0)

    def windows(
        self,
        decoder: RecordDecoder,
        partitions: Sequence[TopicPartition],
        between: Callable[[], bool] | None = None,
    ) -> bool:
        """Rebuild ``decoder``'s traffic windows of ``partitions`` from their records before
        each one's offset (the committed one, or a rewound batch's first), before scoring from
        there: scores after a start, a rebalance or an abort equal an uninterrupted run's.  The
        records are read and run through the windows a chunk at a time; ``between()`` is called
        after each chunk, and a False from it ends the rebuild unfinished (the windows dropped;
        returns False)."""
        from stream_od.kafka import tail

        config = self.config()
        for tp in partitions:
            stream = (tp.topic, tp.partition)
            decoder.drop_windows([stream])
            if tp.offset <= 0:
                continue  # nothing before it: the windows start empty, as they did then
            t0 = time.perf_counter()
            read = 0
            chunks = tail.tail_chunks(
                config,
                tp,
                tp.offset,
                decoder.restore_test,
                timeout_s=self.settings.kafka_retry_timeout_s,
            )
            try:
                while True:
                    try:  # reading the tail; what between() raises is its own
                        values = next(chunks, None)
                    except (KafkaException, TimeoutError) as exc:
                        raise self.failed(
                            exc,
                            f"{tp.topic}[{tp.partition}] to rebuild its traffic windows",
                            tp.topic,
                        ) from exc
                    if values is None:
                        break
                    decoder.decode(values, streams=[stream] * len(values))  # windows, not scores
                    read += len(values)
                    self.metrics.window_restored_records.inc(len(values))
                    if between is not None and not between():
                        decoder.drop_windows([stream])
                        log.info("rebuild of %s[%d] given up", tp.topic, tp.partition)
                        return False
            finally:
                chunks.close()
            seconds = time.perf_counter() - t0
            self.metrics.state_restore_seconds.labels("windows").observe(seconds)
            log.info(
                "rebuilt the windows of %s[%d] from its %d records before offset %d in %.1f s",
                tp.topic,
                tp.partition,
                read,
                tp.offset,
                seconds,
            )
        return True
