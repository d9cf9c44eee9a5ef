"""The stream worker: Kafka in, micro-batches through the model, alerts out.

One loop, read top to bottom::

    consume up to max_batch_records, waiting at most what is left of max_batch_wait_ms
      -> decode + validate (stream_od.records)     bad records -> dead letters;
                                                   other kinds of record ([select]) skipped
      -> score (the artifact: standardize + detector)
      -> alerts over the threshold (stream_od.alerts)
      -> one transaction: alerts + dead letters (+ scores) + the consumer offsets

Exactly-once (the default): a transactional producer commits each batch's output together with
the input offsets (``send_offsets_to_transaction`` with the group metadata, so a zombie from an
older group generation is fenced by the broker).  With ``overlap_commits``, when the worker is
behind (full batches), a batch's commit runs on a second thread while the loop consumes, decodes
and scores the next batch; that batch is written only once the commit is through, so one
transaction at most is open.  Rebalance callbacks only run inside ``consume`` and wait for the
commit in flight first, so no transaction is ever open across a rebalance.  An abortable error
aborts the batch and rewinds the consumer to the batch's first offsets (the batch read after it,
if any, with it); a fatal error (fenced) stops the worker without writing.
At-least-once: produce, flush, then commit the offsets synchronously.

The worker knows the model only through :class:`stream_od.scorer.Scorer`: the artifact's
feature ``schema`` (which fields of a record it reads, and how), ``score_and_contributions``,
``threshold`` and ``version``, and what is derived from them.  What a Kafka error means and
what to fix is in :mod:`stream_od.kafka.explain`; the per-record reads of a batch (keys,
timestamps, offsets) in :mod:`stream_od.kafka.messages`; reading a partition's state back
(traffic windows, suppression) in :mod:`stream_od.kafka.state`; what a windows stage writes in
:mod:`stream_od.kafka.stage`.  The loop here decides *when*: a partition taken over waits,
paused, until its state is back, and the group is served meanwhile.
"""

from __future__ import annotations

import collections
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import orjson
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from stream_od.alerts import AlertPolicy, Origin
from stream_od.alerts.facts import KafkaCoordinates
from stream_od.alerts.policy import decode_key
from stream_od.alerts.volume import AlertVolume, Stream
from stream_od.config import WorkerSettings
from stream_od.errors import EXIT_STUCK, EXIT_UNREACHABLE, FatalWorkerError
from stream_od.features import missing_counts, unseen_counts
from stream_od.kafka import clients, dead_letters, explain
from stream_od.kafka.blocking import BoundedCaller, CallWatchdog
from stream_od.kafka.messages import (
    batch_stamps,
    coordinates,
    first_offsets,
    kafka_times,
    key_size,
    newest_by_partition,
    next_offsets,
    record_key,
    topic_partition,
)
from stream_od.kafka.stage import StageRecord, stage_records
from stream_od.kafka.state import StateReader
from stream_od.metrics import Health, WorkerMetrics
from stream_od.records import (
    NON_FINITE_SCORE,
    NON_FINITE_SCORE_DETAIL,
    DecodedBatch,
)
from stream_od.schema.select import NOT_SELECTED
from stream_od.scorer import Model, Scorer, keep_windows

if TYPE_CHECKING:
    from stream_od.kafka.topic_settings import StampWindow

log = logging.getLogger("stream_od.worker")

#: seconds librdkafka is given for send_offsets_to_transaction (a module attribute so that tests of
#: a call that never returns need not wait this long)
TXN_CALL_S = 30.0


def _partitions_by_topic(partitions: list[TopicPartition]) -> str:
    """``topic [0, 1, 2]`` per topic, for the log."""
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return ", ".join(f"{t} {sorted(p)}" for t, p in sorted(by_topic.items())) or "nothing"


@dataclass
class BatchResult:
    consumed: int
    scored: int
    alerts: int
    dead_letters: int
    aborted: bool = False
    skipped: int = 0  # records of another kind than the schema's ([select]), committed


@dataclass
class _Scored:
    """A batch decoded and scored, not yet written."""

    messages: Sequence[Message]
    scorer: Scorer
    batch: DecodedBatch
    scores: np.ndarray
    contributions: np.ndarray
    hit: np.ndarray  # rows over the threshold
    staged: list[StageRecord] | None  # a windows stage's output records
    decode_s: float
    score_s: float


@dataclass(frozen=True)
class _Committed:
    offsets: list[TopicPartition]
    at: float  # wall clock when the commit returned (the end of end-to-end latency)
    seconds: float


@dataclass
class _InFlight:
    """A batch written into its transaction, whose commit is running."""

    scored: _Scored
    alerts: list
    passed: Any  # the alert volume's verdict (alerts passed, suppressed, dropped)
    written_s: float
    future: Future[_Committed]


class Worker:
    """Consume-score-produce loop: ``run()`` until ``stop()``; ``process(messages)`` is one
    batch."""

    def __init__(
        self,
        settings: WorkerSettings,
        model: Model,
        *,
        metrics: WorkerMetrics | None = None,
        health: Health | None = None,
        stage_window: StampWindow | None = None,
    ):
        self.settings = settings
        # the timestamps the windows stage topic accepts (None: any); read at start
        self.stage_window = stage_window
        self.metrics = metrics or WorkerMetrics()
        self.health = health or Health()
        self.scorer = Scorer.build(model, settings)
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        self._stop = threading.Event()
        self._pending_scorer: Scorer | None = None
        self._swap_lock = threading.Lock()
        self._assigned: set[tuple[str, int]] = set()
        self._invalid_window: collections.deque[tuple[int, int]] = collections.deque()
        self.consumer = clients.make_consumer(settings)
        self._delivery_errors: list[tuple[str, KafkaError]] = []
        self._attempts = 0  # consecutive failed attempts at the current batch
        self._consumer_trouble: dict[int, float] = {}  # error code -> first seen (monotonic)
        self._outage_since: float | None = None  # first batch lost to an unreachable broker
        self._committed: dict[tuple[str, int], int] = {}  # offsets this worker committed
        self._last_stamp: dict[tuple[str, int], float] = {}  # newest committed record's time
        self._watchdog = CallWatchdog()  # ends the process when a Kafka call never returns
        self._bounded = BoundedCaller()  # gives up on one whose abandonment is safe
        # Commits overlap the next batch's decoding and scoring on this one thread.
        self._committer = (
            ThreadPoolExecutor(1, thread_name_prefix="stream-od-commit")
            if settings.overlap_commits
            else None
        )
        self._in_flight: _InFlight | None = None  # the batch being committed
        self._in_rebalance = False
        self._rewind_after: list[Message] | None = None  # failed in a callback: seek after it
        # Partitions paused until their traffic windows are rebuilt (taken over, or a batch
        # aborted): the loop rebuilds one at a time, serving the group between chunks.
        self._rebuilds: list[TopicPartition] = []
        self.producer = clients.make_producer(settings, on_error=self._on_delivery_error)
        self.volume = AlertVolume(
            settings.suppress_window_s,
            settings.suppress_by,
            model.detector_kind,
            settings.max_alerts_per_second,
        )
        self.state = StateReader(settings, self.metrics)  # reads partitions' state back
        self._set_model_metrics()
        self.health.model_loaded = True

    # -- lifecycle -----------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish the batch in flight, commit, and return."""
        self._stop.set()

    def swap_model(self, model: Model) -> None:
        """Use ``model`` from the next batch on (thread-safe; never mid-batch)."""
        scorer = Scorer.build(model, self.settings)
        with self._swap_lock:
            self._pending_scorer = scorer

    def run(self) -> None:
        s = self.settings
        if self.exactly_once:
            try:
                self._retry(lambda: self.producer.init_transactions(30), "init_transactions", 30)
            except KafkaException as exc:  # neither retriable nor fatal: waiting will not help
                raise FatalWorkerError(
                    f"init_transactions: {explain.fix(exc.args[0], None)}"
                ) from exc
        if self.volume.suppressing:
            self._ensure_changelog()
        self.consumer.subscribe(
            [s.input_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self.health.subscribed = True
        self.metrics.up.set(1)
        log.info(
            "consuming %s as group %s (%s), model %s",
            s.input_topic,
            s.group_id,
            s.processing_guarantee,
            self.scorer.model.version,
        )
        if self.scorer.decoder.windowed:
            log.warning(
                "the model's schema has traffic windows: each partition's are computed "
                "from that partition's records, so a host's windows are whole only when "
                "all its records reach one partition (a topic keyed by that host; "
                "docs/windows.md)"
            )
        wait_s = s.max_batch_wait_ms / 1000.0
        last_lag = 0.0
        taken = time.monotonic()  # when the last batch was taken from the consumer
        _freeze_heap()
        try:
            while not self._stop.is_set():
                if not self._attempts:  # a batch that keeps failing is no sign of health
                    self.health.turned()
                self.metrics.loop_heartbeat.set(time.time())
                if self._rebuilds:
                    self._rebuild_next()
                messages = self.consumer.consume(
                    num_messages=s.max_batch_records, timeout=self._batch_timeout(wait_s, taken)
                )
                taken = time.monotonic()
                messages = self._drop_errors(messages)
                if self._rewind_after is not None:
                    # The batch in flight failed in a rebalance callback during that consume:
                    # rewind it (and drop what came with it) now that consume has returned.
                    failed, self._rewind_after = self._rewind_after, None
                    self._seek_back([*failed, *messages])
                    messages = []
                if messages:
                    self.process(messages)
                else:
                    self._settle()
                now = time.monotonic()
                if now - last_lag >= 1.0:
                    self._update_lag()
                    if not messages:  # settled above: no commit in flight
                        self._commit_idle_positions()
                    last_lag = now
        except BaseException:
            self._abandon_in_flight()
            raise
        else:
            self._settle()
        finally:
            self.metrics.up.set(0)
            self.health.subscribed = False
            self._close()

    def _batch_timeout(self, wait_s: float, taken: float) -> float:
        """How long the next ``consume`` may wait: what is left of the batching period
        (``max_batch_wait_ms``), counted from when the last batch was taken.  The records that
        arrived while that batch was processed have waited already; waiting the whole period
        after each batch added the processing time to every record's latency.  The transaction
        rate stays at most one per period either way."""
        return max(0.0, wait_s - (time.monotonic() - taken))

    def _close(self) -> None:
        try:
            self.producer.flush(10)
        except KafkaException as exc:  # a producer in a fatal state: the cause is already out
            log.warning("closing: the producer could not flush (%s)", exc.args[0])
        finally:
            if self._committer is not None:
                self._committer.shutdown(wait=False)
            # leaves the group at once (partitions move without a timeout); watched, since a
            # close with the brokers away can block for good (librdkafka #4519)
            with self._watchdog.call("consumer close", 30):
                self.consumer.close()

    # -- one batch -----------------------------------------------------------------------
    def process(self, messages: Sequence[Message]) -> BatchResult | None:
        """Take one batch in: decode, score, write, commit; returns its result.

        With ``overlap_commits`` (off by default), when behind (a full batch:
        ``max_batch_records``), the commit is left running on the committer thread, and the
        loop goes on to consume, decode and score the next batch meanwhile; the result returned
        is then the batch before's (None when there was none), and this one's comes with the
        next call or ``_settle()``.  A commit is a few round trips to the broker in which the
        loop has nothing to do, so overlapping drains a backlog 1.2-1.3 times as fast here; a
        batch that is not full is committed before the call returns, since at a rate the worker
        keeps up with, a second thread only adds contention for the GIL and the cores to every
        batch's latency.  Near capacity with many alerts it still raised the latency, which is
        why it is off by default (``benchmarks/stream_throughput.py --compare-overlap``).
        Should an overlapped commit fail, both batches are rewound and read again.  A model
        swapped in with other traffic windows sends the batch back, to be read again once its
        windows are built (:meth:`_wait_for_windows`)."""
        behind = self._committer is not None and len(messages) >= self.settings.max_batch_records
        if self._take_pending_model():
            return self._wait_for_windows(messages)
        scored = self._score(messages)
        before = self._settle(also=messages)
        if before is not None and before.aborted:  # both batches were rewound
            return before
        failed = self._write(scored, overlap=behind)
        if failed is not None:
            return failed
        return before if behind else self._settle()

    def _take_pending_model(self) -> bool:
        """Score with the model :meth:`swap_model` left waiting, if any, from this batch on;
        True when its traffic windows are other than the last model's, and so must be built
        before it scores (:meth:`_wait_for_windows`)."""
        with self._swap_lock:
            pending, self._pending_scorer = self._pending_scorer, None
        if pending is None:
            return False
        kept = keep_windows(self.scorer, pending)
        self.scorer = pending
        _freeze_heap()
        self.metrics.model_swaps.inc()
        self._set_model_metrics()
        log.info("now scoring with model %s (%s)", self.scorer.model.version, self.scorer.placement)
        if not pending.decoder.windowed and self._rebuilds:
            # partitions still waiting for the last model's windows: the new one has none
            waiting, self._rebuilds = self._rebuilds, []
            self.consumer.resume([TopicPartition(tp.topic, tp.partition) for tp in waiting])
        return pending.decoder.windowed and not kept

    def _wait_for_windows(self, messages: Sequence[Message]) -> BatchResult | None:
        """A new model with other windows builds them from each partition's records before
        ``messages``, as a worker started with it would have them, before it scores: every
        partition waits, paused, for the loop to rebuild its windows (the group served between
        chunks, as after an assignment), and ``messages`` are read again after.  Built here, in
        place, the windows of every partition at once kept the loop from the group for as long
        as all the rebuilds took, past ``max.poll.interval.ms`` on busy partitions.  Returns
        the result of the batch before, when one was in flight."""
        before = self._settle(also=messages)
        if before is None or not before.aborted:  # (an aborted one rewound both already)
            self._seek_back(messages)  # read again, once their windows are rebuilt up to it
        # The others wait from where they stand; those waiting already keep their place.
        waiting = {(tp.topic, tp.partition) for tp in self._rebuilds}
        self._queue_rebuilds(self._next_offsets(self._assigned - waiting))
        return before

    def _next_offsets(self, keys: Iterable[tuple[str, int]]) -> list[TopicPartition]:
        """Where each partition of ``keys`` is read from next: the consumer's position, or
        for one not read from since it was assigned (an idle partition, which has none), its
        committed offset."""
        partitions = [TopicPartition(t, p) for t, p in sorted(keys)]
        if not partitions:
            return []
        at = self.consumer.position(partitions)
        unread = [tp for tp in at if tp.offset < 0]
        if not unread:
            return at
        committed = {
            (tp.topic, tp.partition): tp for tp in self.consumer.committed(unread, timeout=30)
        }
        return [committed.get((tp.topic, tp.partition), tp) if tp.offset < 0 else tp for tp in at]

    def _score(self, messages: Sequence[Message]) -> _Scored:
        """Decode and score a batch (CPU only, no Kafka call): it may run while the batch
        before it is being committed."""
        scorer = self.scorer
        n = len(messages)
        self.metrics.records_consumed.inc(n)

        t0 = time.perf_counter()
        decoder = scorer.decoder
        batch = decoder.decode(
            [msg.value() for msg in messages],
            list(map(key_size, messages)),
            list(map(topic_partition, messages)) if decoder.windowed else None,
        )
        t1 = time.perf_counter()
        staged = None
        if self.settings.windows_stage_topic is not None:  # a windows stage: no scoring
            staged = stage_records(
                messages,
                batch,
                decoder,
                self.settings.windows_stage_roles,
                self.settings.windows_stage_key,
                self.stage_window,
            )
            scores, contributions = np.empty(0), np.empty((0, batch.X.shape[1]))
        elif len(batch.X):
            scores, contributions = scorer.model.score_and_contributions(
                batch.X, check_finite=False
            )
            finite = np.isfinite(scores)
            if not finite.all():  # one record must not stop its partition: dead-lettered
                batch = batch.reject_rows(finite, NON_FINITE_SCORE, NON_FINITE_SCORE_DETAIL)
                scores, contributions = scores[finite], contributions[finite]
        else:
            scores, contributions = np.empty(0), np.empty((0, batch.X.shape[1]))
        hit = np.flatnonzero(scores > scorer.policy.threshold)
        t2 = time.perf_counter()
        self._check_invalid_ratio(n, len(batch.rejected))
        return _Scored(
            messages, scorer, batch, scores, contributions, hit, staged, t1 - t0, t2 - t1
        )

    def _write(self, scored: _Scored, overlap: bool = False) -> BatchResult | None:
        """Alerts, dead letters (and scores) of a scored batch into a transaction with its
        offsets, whose commit is done here, or started on the committer thread (``overlap``).
        Returns the aborted result when the writing failed, else None."""
        t0 = time.perf_counter()
        messages, batch, scores, contributions, hit = (
            scored.messages,
            scored.batch,
            scored.scores,
            scored.contributions,
            scored.hit,
        )

        def origin(i: int) -> Origin:
            msg = messages[i]
            topic, partition, offset = coordinates(msg)
            return Origin(topic, partition, offset, msg.timestamp()[1], record_key(msg))

        policy = scored.scorer.policy
        alert_rows = batch.rows[hit]
        detected_at = int(time.time() * 1000)
        records = batch.fields_of(hit)
        volume = self.volume
        if volume.suppressing:  # only the alerts that go out are built
            times, stream_times = self._event_times(messages, batch, policy)
            admitted = volume.admit_records(
                policy,
                kafka_coordinates([messages[i] for i in alert_rows.tolist()]),
                records,
                scores[hit],
                times[hit],
            )
            emit = admitted.emit
            hit, alert_rows = hit[emit], alert_rows[emit]
            records = [records[j] for j in emit]
        origins = [origin(int(i)) for i in alert_rows]
        facts = policy.facts(
            origins, records, scores[hit], batch.X[hit], contributions[hit], detected_at
        )
        if volume.suppressing:
            passed = volume.settle(admitted, facts, stream_times)
        else:
            passed = volume.limit(facts)
        alerts = passed.alerts + policy.finish_summaries(passed.summaries, detected_at)
        keys = {a.id: record_key(messages[int(i)]) for a, i in zip(facts, alert_rows)}
        self._delivery_errors.clear()
        try:
            if self.exactly_once:
                self.producer.begin_transaction()
            out = self.settings
            if scored.staged is not None:
                stage_topic = cast(str, out.windows_stage_topic)
                for doc, stage_key, stamp, stage_headers in scored.staged:
                    self._produce(stage_topic, doc, stage_key, stage_headers, timestamp=stamp)
            for a in alerts:
                self._produce(
                    out.alerts_topic, policy.render(a), _alert_key(a, keys), policy.headers(a)
                )
            if volume.suppressing:
                self._produce_changelog()
            for rej in batch.rejected:
                msg = messages[rej.index]
                value, key, headers = dead_letters.fit(
                    msg.value(),
                    record_key(msg),
                    dead_letters.own_headers(origin(rej.index), rej.reason, rej.detail),
                    cast("list[tuple[str, bytes]] | None", msg.headers()),
                    out.max_output_bytes,
                )
                self._produce(out.dead_letter_topic, value, key, headers)
            if out.scores_topic:
                for i, sc in zip(batch.rows, scores):
                    msg = messages[int(i)]
                    self._produce(
                        out.scores_topic, policy.score_record(origin(int(i)), float(sc)), msg.key()
                    )
            metadata = self.consumer.consumer_group_metadata() if self.exactly_once else None
        except KafkaException as exc:
            return self._failed(exc, messages)
        written_s = time.perf_counter() - t0
        if self._committer is None or not overlap:
            future: Future[_Committed] = Future()
            try:
                future.set_result(self._timed_commit(messages, metadata))
            except KafkaException as exc:
                future.set_exception(exc)
        else:
            future = self._committer.submit(self._timed_commit, messages, metadata)
        self._in_flight = _InFlight(scored, alerts, passed, written_s, future)
        return None

    def _timed_commit(self, messages: Sequence[Message], metadata: Any) -> _Committed:
        t0 = time.perf_counter()
        offsets = self._commit(messages, metadata)
        return _Committed(offsets, time.time(), time.perf_counter() - t0)

    def _settle(self, also: Sequence[Message] = ()) -> BatchResult | None:
        """Wait for the batch in flight to commit, and account for it: None when there was
        none.  When its commit failed, it is rewound (with ``also``, a batch read after it) and
        retried or waited out as a failed batch is, and the aborted result is returned."""
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            return None
        scored = flight.scored
        try:
            done = flight.future.result()
        except KafkaException as exc:
            return self._failed(exc, [*scored.messages, *also])
        messages, batch = scored.messages, scored.batch
        n = len(messages)
        m = self.metrics
        passed, alerts = flight.passed, flight.alerts
        self.volume.commit()
        self._attempts = 0
        self._outage_since = None
        for tp in done.offsets:
            self._committed[(tp.topic, tp.partition)] = tp.offset
        stamps, last_stamps = batch_stamps(messages)
        self._last_stamp.update(last_stamps)  # the newest committed record's time (lag in s)

        m.batches.inc()
        m.batch_size.observe(n)
        m.batch_stage_seconds.labels("decode").observe(scored.decode_s)
        m.batch_stage_seconds.labels("score").observe(scored.score_s)
        m.batch_stage_seconds.labels("commit").observe(flight.written_s + done.seconds)
        if scored.staged is None:
            schema = scored.scorer.model.schema
            for name, count in unseen_counts(batch.X, schema).items():
                m.unseen_categories.labels(name).inc(count)
            for name, count in missing_counts(batch.X, schema).items():
                m.missing_fields.labels(name).inc(count)
        decoder = scored.scorer.decoder
        if decoder.windowed:
            m.window_keys.set(decoder.window_keys)
            m.window_late_records.inc(decoder.take_late())
        for severity, count in collections.Counter(a.severity for a in alerts).items():
            m.alerts.labels(severity).inc(count)
        if passed.summaries:
            m.alert_summaries.inc(len(passed.summaries))
        if passed.suppressed:
            m.alerts_suppressed.inc(passed.suppressed)
        if passed.dropped:
            m.alerts_dropped.labels("rate_limit").inc(passed.dropped)
        if self.volume.suppressing:
            m.suppression_entities.set(self.volume.entities())
        m.end_to_end_latency.observe_many(done.at - stamps / 1000.0)
        # Each record's outcome is counted last, so that a scrape whose outcomes add up to what
        # was sent sees every other count of those batches too (records_consumed is counted
        # when a batch is read, before it commits).
        for rej in batch.rejected:
            m.dead_letters.labels(rej.reason).inc()
        if batch.skipped:
            m.records_skipped.labels(NOT_SELECTED).inc(len(batch.skipped))
        if scored.staged is None:
            m.records_scored.inc(len(batch.rows))
        else:
            m.windows_stage_records.inc(len(batch.rows))
        return BatchResult(
            n, len(batch.rows), len(alerts), len(batch.rejected), skipped=len(batch.skipped)
        )

    def _failed(self, exc: KafkaException, messages: Sequence[Message]) -> BatchResult:
        """A batch whose writing or commit failed: stop on a fatal error; otherwise abort (or
        replace the producer when the brokers went away), rewind ``messages`` and back off."""
        err: KafkaError = exc.args[0]
        if err.fatal():
            raise self._fatal(err) from exc
        if not self.exactly_once:
            raise exc
        self.metrics.transaction_aborts.labels(explain.reason(err)).inc()
        n = len(messages)
        if self._brokers_away(err):
            # The brokers went away mid-transaction.  A producer whose transactional call
            # timed out can stay stuck on its lost coordinator (librdkafka #5456, #5511), so
            # it is replaced: the new one's init_transactions fences it and has the broker
            # abort its open transaction.
            self._renew_producer()
            self._rewind(messages)
            self._waited_out(n, err)
        else:
            self._abort_and_rewind(messages)
            self._failed_attempt(n, err)
        return BatchResult(n, 0, 0, 0, aborted=True)

    def _abandon_in_flight(self) -> None:
        """On the way out after an error: let the commit in flight finish (so that it does not
        race the producer's close), whatever its outcome; its batch is read again if it did
        not commit."""
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            return
        try:
            flight.future.result()
        except Exception as exc:  # already stopping on another error
            log.warning("the batch in flight did not commit (%s); it will be read again", exc)

    def _event_times(
        self, messages: Sequence[Message], batch, policy: AlertPolicy
    ) -> tuple[np.ndarray, dict[Stream, int]]:
        """The event time of each scoreable row (the record's own, as its alert takes it, or
        Kafka's), and each partition's newest in the batch: the suppression windows' clock.
        Without a time field in the schema, the clock is every record's Kafka time."""
        identity = policy.identity
        scored = [messages[i] for i in batch.rows.tolist()]
        if identity.time_field:
            times = identity.event_ms(batch.fields_of(slice(None)), lambda: kafka_times(scored))
            newest = newest_by_partition(scored, times)
        else:  # (a CSV record's fields are not decoded for nothing)
            every = np.asarray(kafka_times(messages), dtype=np.int64)
            times = every[batch.rows]
            newest = newest_by_partition(messages, every)
        return times, newest

    def _ensure_changelog(self) -> None:
        from stream_od.kafka.changelog import ensure_changelog

        s = self.settings
        meta = self.consumer.list_topics(s.input_topic, timeout=30).topics.get(s.input_topic)
        partitions = len(meta.partitions) if meta is not None and meta.partitions else 1
        ensure_changelog(s.client_config({}), s.suppression_changelog_topic, partitions)

    def _produce_changelog(self) -> None:
        """The batch's suppression changes, into the changelog partition of their input
        partition, in the batch's transaction."""
        topic = self.settings.suppression_changelog_topic
        for (_, partition), state in self.volume.partitions.items():
            for key, value in state.changes():
                self._produce(topic, value, key.encode(), partition=partition)

    def _failed_attempt(self, n: int, err: KafkaError) -> None:
        """Back off after a failed batch; stop once it failed ``max_batch_attempts`` times in a
        row, naming what refused it (the next attempt would fail the same way)."""
        self._attempts += 1
        cause = explain.cause(err, self._delivery_errors, self._output_topics())
        if self._attempts >= self.settings.max_batch_attempts:
            # The transaction's error may be only its state ("Erroneous state"): ask the
            # broker whether a permission on an output topic is what is missing.
            cause = self._missing_write() or cause
            raise FatalWorkerError(
                f"a batch of {n} records failed {self._attempts} times in a row: {cause}; "
                "stopping without committing it (nothing is lost: it is re-read on restart)",
                exit_code=EXIT_STUCK,
            )
        backoff = min(0.5 * 2 ** (self._attempts - 1), 30.0)
        log.warning(
            "batch of %d aborted (attempt %d of %d: %s); rewinding to its first offsets, "
            "retrying in %.1f s",
            n,
            self._attempts,
            self.settings.max_batch_attempts,
            cause,
            backoff,
        )
        self._stop.wait(backoff)

    def _brokers_away(self, err: KafkaError) -> bool:
        """The batch failed because the brokers were away (a retriable error, or records that
        timed out or lost their connection), not because an output refused it."""
        return (
            err.retriable()
            or err.code() in explain.AWAY
            or any(e.code() in explain.AWAY for _, e in self._delivery_errors)
        )

    def _waited_out(self, n: int, err: KafkaError) -> None:
        """A batch lost to the brokers being away (timed out, coordinator unavailable): retry it
        for up to ``kafka_retry_timeout_s`` from the first such loss, then stop (exit 4).  This
        is no stuck batch, so it does not count towards ``max_batch_attempts``."""
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
        waited = now - self._outage_since
        limit = self.settings.kafka_retry_timeout_s
        if waited >= limit:
            gone = self._missing_outputs()
            if gone:
                raise FatalWorkerError(
                    f"batches kept failing for {waited:.0f} s: {gone}",
                    exit_code=EXIT_STUCK,
                )
            raise FatalWorkerError(
                f"batches kept failing for {waited:.0f} s (kafka_retry_timeout_s={limit:g}): "
                f"{err}; check that the brokers at {self.settings.bootstrap_servers} are up and "
                "reachable",
                exit_code=EXIT_UNREACHABLE,
            )
        log.warning(
            "batch of %d aborted, waiting for the brokers (%s); rewound to its first "
            "offsets, retrying (%.0f of %g s)",
            n,
            err,
            waited,
            limit,
        )
        self._stop.wait(1.0)

    def _fatal(self, err: KafkaError) -> FatalWorkerError:
        """The error to stop with on a fatal Kafka error.  librdkafka can turn a partition the
        broker refused into a fatal "invalid state" of the transaction; then the fix is the
        permission, so the broker is asked which output topic this worker may not write."""
        if self.exactly_once and err.code() not in explain.FENCING:
            missing = self._missing_write()
            if missing is not None:
                return FatalWorkerError(
                    f"the transaction failed fatally ({err.str()}): {missing}",
                    exit_code=EXIT_STUCK,
                )
        return FatalWorkerError(explain.fatal_message(err, self.settings))

    def _missing_write(self) -> str | None:
        """Which output topic this worker may no longer write to, asked of the broker (the
        transaction error does not name the partition it was refused); an unreachable broker
        is said as such."""
        from stream_od.errors import ConfigError

        try:
            return self._output_problems(timeout=10.0)
        except (ConfigError, KafkaException) as exc:
            return str(exc)

    def _missing_outputs(self) -> str | None:
        """Which output topics no longer exist (or may no longer be written), asked of the
        brokers: records for a topic deleted under a running worker can time out like records
        for brokers that are away, so the end of that wait names the topic rather than the
        brokers.  None when nothing is missing, or no broker answers."""
        from stream_od.errors import ConfigError

        try:
            return self._output_problems(timeout=5.0)
        except (ConfigError, KafkaException):
            return None

    def _output_problems(self, timeout: float) -> str | None:
        """What the brokers say stands between this worker and writing its output topics (a
        missing topic, a missing WRITE), or None; raises when they cannot be asked."""
        from stream_od.kafka.topics import access_problems, connect, principal

        config = self.settings.client_config({})
        admin = connect(config, timeout=timeout)
        problems = access_problems(admin, principal(config), self._output_needs(), timeout=timeout)
        return "; ".join(problems) or None

    def _output_needs(self) -> list:
        from stream_od.kafka.topics import Need

        return [
            Need("topic", topic, "WRITE", "STREAM_OD_" + name.upper())
            for name, topic in self.settings.written_topics().items()
        ]

    def _output_topics(self) -> list[str]:
        return list(self.settings.written_topics().values())

    def _produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
        timestamp: int = 0,
        partition: int = -1,  # -1: the partitioner's choice (librdkafka's RD_KAFKA_PARTITION_UA)
    ) -> None:
        deadline = None  # set on the first refusal: most records go through at once
        produce: Any = self.producer.produce  # (its stubs type headers narrower than they are)
        while True:
            try:
                produce(
                    topic,
                    value=value,
                    key=key,
                    headers=headers,
                    timestamp=timestamp,
                    partition=partition,
                )
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                if deadline is None:
                    deadline = time.monotonic() + self.settings.kafka_retry_timeout_s
                if time.monotonic() > deadline:
                    raise FatalWorkerError(
                        f"the producer's queue stayed full for kafka_retry_timeout_s="
                        f"{self.settings.kafka_retry_timeout_s:g} s: the brokers do not take "
                        f"records for {topic!r}; check that they are reachable",
                        exit_code=EXIT_UNREACHABLE,
                    ) from None
                self.producer.poll(0.05)

    def _commit(self, messages: Sequence[Message], metadata: Any) -> list[TopicPartition]:
        """Commit the batch's output and input offsets (with the group ``metadata`` under
        exactly-once, taken on the loop's thread); returns the offsets."""
        offsets = next_offsets(messages)
        if not self.exactly_once:
            if self.producer.flush(self.settings.transaction_timeout_ms / 1000) != 0:
                raise FatalWorkerError(
                    "records were not acknowledged within "
                    "transaction_timeout_ms; not committing offsets"
                )
            if self._delivery_errors:
                topic, err = self._delivery_errors[0]
                raise FatalWorkerError(
                    f"{len(self._delivery_errors)} output records were not "
                    f"delivered (first: {explain.cause(err, [(topic, err)], [])}); not "
                    "committing offsets, the batch will be re-processed"
                )
            self.consumer.commit(offsets=offsets, asynchronous=False)
            return offsets
        # Not retried in place: re-calling it after a timeout can block past its own timeout
        # (librdkafka #5456); a retriable error aborts the batch, which is rewound and redone.
        # The first call can block past it too: it is then abandoned as if it had timed out,
        # and the producer replaced (see stream_od.kafka.blocking).
        producer = self.producer
        self._bounded.call(
            "send_offsets_to_transaction",
            lambda: producer.send_offsets_to_transaction(offsets, metadata, TXN_CALL_S),
            TXN_CALL_S,
        )
        # Retried in place: after a timed-out commit the broker may have committed, so aborting
        # and redoing the batch could write it twice; librdkafka resumes the commit instead.
        self._retry(lambda: self.producer.commit_transaction(60), "commit_transaction", 60)
        return offsets

    def _on_delivery_error(self, err: KafkaError, msg: Message) -> None:
        # Exactly-once: the failed record also fails commit_transaction, which aborts.
        self._delivery_errors.append((msg.topic() or "?", err))

    def _abort_and_rewind(self, messages: Sequence[Message]) -> None:
        try:
            self._retry(lambda: self.producer.abort_transaction(30), "abort_transaction", 30)
        except KafkaException as exc:
            if exc.args[0].fatal():
                raise self._fatal(exc.args[0]) from exc
            raise
        self._rewind(messages)

    def _rewind(self, messages: Sequence[Message]) -> None:
        self.volume.rollback()  # the batch will be redone: its suppression changes undone
        if self._in_rebalance:
            # Inside consume(): a seek now could be overtaken by the records that consume
            # returns; the loop seeks once it has returned (and drops those records).
            self._rewind_after = list(messages)
            return
        self._seek_back(messages)

    def _seek_back(self, messages: Sequence[Message]) -> None:
        """Seek each assigned partition back to its first offset in ``messages``."""
        firsts = [
            tp for tp in first_offsets(messages) if (tp.topic, tp.partition) in self._assigned
        ]
        for tp in firsts:
            self.consumer.seek(tp)
        if self.scorer.decoder.windowed:
            # The windows took in the aborted batch: rebuild them up to its first offsets, so
            # that redoing it does not count its records twice.
            self._queue_rebuilds(firsts)

    def _queue_rebuilds(self, positions: Sequence[TopicPartition]) -> None:
        """Pause ``positions``' partitions, their windows gone, until the loop has rebuilt the
        windows from their records before each position (:meth:`_rebuild_next`)."""
        if not positions:
            return
        keys = {(tp.topic, tp.partition) for tp in positions}
        self.consumer.pause([TopicPartition(t, p) for t, p in sorted(keys)])
        self.scorer.decoder.drop_windows(keys)
        self._rebuilds = [tp for tp in self._rebuilds if (tp.topic, tp.partition) not in keys]
        self._rebuilds += positions

    def _rebuild_next(self) -> None:
        """Rebuild the windows of the next partition waiting for them, and let its records
        flow.  One partition a turn of the loop, and between the chunks of its records the
        group is served (with every partition paused, so that no record comes in meanwhile):
        the worker answers rebalances however long a partition's rebuild takes."""
        tp = self._rebuilds.pop(0)
        key = (tp.topic, tp.partition)
        self.consumer.pause([TopicPartition(t, p) for t, p in sorted(self._assigned)])
        try:
            done = self._restore_windows([tp], between=lambda: self._serve_group(key))
            if not done and key in self._assigned:  # stopping: it waits for the next owner
                self._rebuilds.insert(0, tp)
        finally:
            waiting = {(w.topic, w.partition) for w in self._rebuilds}
            flowing = [TopicPartition(t, p) for t, p in sorted(self._assigned - waiting)]
            if flowing:
                self.consumer.resume(flowing)

    def _serve_group(self, rebuilding: tuple[str, int]) -> bool:
        """A poll while every partition is paused: rebalances are answered (their callbacks
        run), and no record is taken; one fetched before the pause is sought back to, to be
        read again once its partition flows.  Whether the rebuild of ``rebuilding`` goes on
        (it is still this worker's, and the worker is not stopping)."""
        if not self._attempts:  # as the loop's own turns: alive, unless a batch keeps failing
            self.health.turned()
        self.metrics.loop_heartbeat.set(time.time())
        messages = self._drop_errors(self.consumer.consume(num_messages=1_000, timeout=0))
        for tp in first_offsets(messages):
            if (tp.topic, tp.partition) in self._assigned:
                self.consumer.seek(tp)
        return rebuilding in self._assigned and not self._stop.is_set()

    def _restore_windows(
        self, partitions: Sequence[TopicPartition], between: Callable[[], bool] | None = None
    ) -> bool:
        """The traffic windows of ``partitions`` rebuilt (:meth:`StateReader.windows`)."""
        return self.state.windows(self.scorer.decoder, partitions, between)

    def _renew_producer(self) -> None:
        """A new transactional producer with the same transactional id, initialised (which
        fences the old one and aborts what it left open).  The old one is destroyed on a
        daemon thread: destroying a producer stuck on its coordinator can block."""
        holder = [self.producer]
        with self._watchdog.call("purge of the replaced producer", 5):  # its call may be stuck
            holder[0].purge(in_queue=True, in_flight=True)
        self.producer = clients.make_producer(self.settings, on_error=self._on_delivery_error)
        self.metrics.producer_renewals.inc()
        threading.Thread(target=_drop, args=(holder,), name="old-producer", daemon=True).start()
        log.warning(
            "replaced the transactional producer after a timed-out transaction; "
            "initialising the new one (this fences the old one)"
        )
        self._retry(lambda: self.producer.init_transactions(30), "init_transactions", 30)

    def _retry(self, call, what: str, timeout_s: float) -> None:
        """``call()`` (which gives up after ``timeout_s``), retrying a retriable error (broker
        down, coordinator moving) with backoff for up to ``kafka_retry_timeout_s``; past that
        the worker stops (exit 4)."""
        limit = self.settings.kafka_retry_timeout_s
        start = time.monotonic()
        attempt = 0
        while True:
            try:
                with self._watchdog.call(what, timeout_s):
                    call()
                return
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.fatal():
                    raise self._fatal(err) from exc
                if not err.retriable():
                    raise
                waited = time.monotonic() - start
                if waited >= limit:
                    raise FatalWorkerError(
                        f"{what} kept failing for {waited:.0f} s (kafka_retry_timeout_s={limit:g}):"
                        f" {err}; check that the brokers at {self.settings.bootstrap_servers} "
                        "are up and reachable",
                        exit_code=EXIT_UNREACHABLE,
                    ) from exc
                attempt += 1
                backoff = min(0.1 * 2**attempt, 5.0, max(limit - waited, 0.0))
                log.warning(
                    "%s: %s; waiting for the brokers, retry %d in %.1f s (%.0f of %g s)",
                    what,
                    err,
                    attempt,
                    backoff,
                    waited,
                    limit,
                )
                time.sleep(backoff)

    def _check_invalid_ratio(self, n: int, bad: int) -> None:
        """Stop before draining a broken upstream into the dead-letter topic."""
        s = self.settings
        if s.max_dead_letter_ratio >= 1.0:
            return
        w = self._invalid_window
        w.append((n, bad))
        while len(w) > 1 and sum(x for x, _ in w) - w[0][0] >= s.dead_letter_window:
            w.popleft()
        total = sum(x for x, _ in w)
        invalid = sum(b for _, b in w)
        if total >= s.dead_letter_window and invalid / total > s.max_dead_letter_ratio:
            raise FatalWorkerError(
                f"{invalid} of the last {total} records are invalid (> max_dead_letter_ratio "
                f"{s.max_dead_letter_ratio}): the producer upstream looks broken; stopping "
                "without committing this batch"
            )

    # -- Kafka callbacks and bookkeeping ---------------------------------------------------
    def _drop_errors(self, messages: list[Message]) -> list[Message]:
        if not any(m.error() for m in messages):
            return messages
        good = []
        for msg in messages:
            err = msg.error()
            if err is None:
                good.append(msg)
            elif err.fatal():
                raise FatalWorkerError(f"consumer: {err}")
            elif err.code() in explain.NEVER_CLEARS:
                raise FatalWorkerError(
                    f"consumer: {explain.fix(err, self.settings.input_topic)}", exit_code=EXIT_STUCK
                )
            else:
                first = self._consumer_trouble.setdefault(err.code(), time.monotonic())
                if time.monotonic() - first > self.settings.kafka_retry_timeout_s:
                    raise FatalWorkerError(
                        f"consumer: {err} for over kafka_retry_timeout_s="
                        f"{self.settings.kafka_retry_timeout_s:g} s: "
                        f"{explain.fix(err, self.settings.input_topic)}",
                        exit_code=EXIT_STUCK,
                    )
                log.warning("consumer: %s", err)
        if good:
            self._consumer_trouble.clear()
        return good

    def _on_assign(self, consumer, partitions: list[TopicPartition]) -> None:
        self._settle_in_rebalance()
        self.metrics.rebalances.labels("assign").inc()
        if self.scorer.decoder.windowed and partitions:
            # Not rebuilt here: a rebuild reads up to an hour of each partition back, and a
            # member inside this callback cannot answer a rebalance (another worker joining),
            # so the group would throw it out once max.poll.interval.ms ran out.  The
            # partitions are taken and paused; the loop rebuilds them one by one, serving the
            # group between chunks of their records, and resumes each once its windows are
            # whole.
            committed = consumer.committed(partitions, timeout=30)
            consumer.incremental_assign(partitions)
            self._queue_rebuilds(committed)
        if self.volume.suppressing and partitions:
            self.state.suppression(self.volume, partitions)
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self.metrics.assigned_partitions.set(len(self._assigned))
        log.info("assigned %s", _partitions_by_topic(partitions))
        others = sorted({tp.topic for tp in partitions} - {self.settings.input_topic})
        if others:  # a group's stale assignment (clients.group_instance_id): say it
            log.warning(
                "the group %r assigned this worker partitions of %s, not of its input topic %r: "
                "another deployment shares the group id with other topics, or the group holds "
                "an old assignment; give each input topic its own STREAM_OD_GROUP_ID",
                self.settings.group_id,
                others,
                self.settings.input_topic,
            )

    def _on_revoke(self, consumer, partitions: list[TopicPartition]) -> None:
        self._release("revoke", partitions)

    def _on_lost(self, consumer, partitions: list[TopicPartition]) -> None:
        self._release("lost", partitions)

    def _settle_in_rebalance(self) -> None:
        """A rebalance waits for the commit in flight: once it returns, no transaction is open
        and every batch read is either committed or rewound, before partitions move."""
        self._in_rebalance = True
        try:
            self._settle()
        finally:
            self._in_rebalance = False

    def _release(self, kind: str, partitions: list[TopicPartition]) -> None:
        # The commit in flight settles first, so there is no open transaction to abort and
        # no uncommitted output for these partitions.
        self._settle_in_rebalance()
        self.metrics.rebalances.labels(kind).inc()
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._assigned -= gone
        self._rebuilds = [tp for tp in self._rebuilds if (tp.topic, tp.partition) not in gone]
        for key in gone:
            self._committed.pop(key, None)
        self.scorer.decoder.drop_windows(gone)
        self.volume.drop(gone)
        self.metrics.assigned_partitions.set(len(self._assigned))
        for topic in {t for t, _ in gone}:
            self.metrics.clear_lag(topic, [p for t, p in gone if t == topic])
        log.info("%s %s", kind, sorted(p for _, p in gone))

    def _commit_idle_positions(self) -> None:
        """When idle, commit positions that moved past the last committed offsets without a
        record: transaction markers (an input written in transactions, such as a windows
        stage's output, ends each transaction with one) and aborted records take offsets that a
        batch's commit (one past its last record) never covers, so the group's lag would stay
        at one or more per partition and an autoscaler on it never see zero."""
        if not self._assigned:
            return
        try:
            positions = self.consumer.position(
                [TopicPartition(t, p) for t, p in sorted(self._assigned)]
            )
        except KafkaException:
            return
        ahead = [
            tp
            for tp in positions
            if tp.offset >= 0 and tp.offset > self._committed.get((tp.topic, tp.partition), -1)
        ]
        if not ahead:
            return
        try:
            if self.exactly_once:
                with self._watchdog.call("commit of idle positions", 30):
                    self.producer.begin_transaction()
                    self.producer.send_offsets_to_transaction(
                        ahead, self.consumer.consumer_group_metadata(), 30
                    )
                    self.producer.commit_transaction(30)
            else:
                self.consumer.commit(offsets=ahead, asynchronous=False)
        except KafkaException as exc:  # nothing rides on it: try again when next idle
            if exc.args[0].fatal():
                raise self._fatal(exc.args[0]) from exc
            log.info("could not commit idle positions (%s); will retry", exc.args[0])
            if self.exactly_once:
                self._end_idle_transaction(exc.args[0])
            return
        for tp in ahead:
            self._committed[(tp.topic, tp.partition)] = tp.offset

    def _end_idle_transaction(self, err: KafkaError) -> None:
        """Abort the idle commit's transaction, bounded as every transactional call is; a
        producer that cannot abort (or whose brokers went away: it may be stuck on its lost
        coordinator, librdkafka #5456) is replaced, so the next batch begins on a clean one."""
        if not self._brokers_away(err):
            try:
                with self._watchdog.call("abort of the idle commit", 30):
                    self.producer.abort_transaction(30)
                return
            except KafkaException as exc:
                if exc.args[0].fatal():
                    raise self._fatal(exc.args[0]) from exc
                log.warning("could not abort the idle commit's transaction (%s)", exc.args[0])
        self._renew_producer()

    def _update_lag(self) -> None:
        if not self._assigned:
            return
        tps = [TopicPartition(t, p) for t, p in sorted(self._assigned)]
        try:
            positions = self.consumer.position(tps)
        except KafkaException:
            return
        for tp in positions:
            try:
                _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high < 0 or tp.offset < 0:
                continue
            behind = max(0, high - tp.offset)
            self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(behind)
            stamp = self._last_stamp.get((tp.topic, tp.partition))
            if behind == 0:
                self.metrics.consumer_lag_seconds.labels(tp.topic, str(tp.partition)).set(0)
            elif stamp is not None:
                self.metrics.consumer_lag_seconds.labels(tp.topic, str(tp.partition)).set(
                    max(0.0, time.time() - stamp)
                )

    def _set_model_metrics(self) -> None:
        where = self.scorer.placement
        self.metrics.describe_model(self.scorer.model, backend=where.backend, device=where.device)


def kafka_coordinates(messages: Sequence[Message]) -> list[KafkaCoordinates]:
    """The coordinates of consumed records as an alert names them, without an
    :class:`Origin` each first: suppression reads them for every record over the threshold,
    and builds the alerts of only a few."""
    return [
        KafkaCoordinates(
            m.topic(),  # type: ignore[arg-type]  # a consumed record has all three
            m.partition(),  # type: ignore[arg-type]
            m.offset(),  # type: ignore[arg-type]
            m.timestamp()[1],
            decode_key(m.key()),
        )
        for m in messages
    ]


def _drop(holder: list) -> None:
    holder.clear()  # the last reference: the client is destroyed on this thread


def _freeze_heap() -> None:
    """Keep the long-lived heap out of Python's cyclic garbage collector.

    A process with TensorFlow, Keras and a loaded model tracks ~450,000 objects; every
    full collection walks all of them (~200 ms here), which stalls the loop and becomes the
    p99 latency.  Collecting once and freezing what survives (start-up, a new model) leaves
    the collector only the short-lived objects of the batches.
    """
    gc.collect()
    gc.freeze()


def _alert_key(alert, keys: dict[str, bytes | None]) -> bytes | None:
    """An alert's Kafka key: its input record's key; a summary's, its entity."""
    if alert.summary is not None:
        return orjson.dumps(alert.summary.entity, option=orjson.OPT_SORT_KEYS)
    return keys.get(alert.id)
