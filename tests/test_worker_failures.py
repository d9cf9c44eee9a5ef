"""The worker's failure paths with fake clients (pure logic; the real broker's versions are in
tests/integration): abort and rewind, bounded retries, a batch that keeps failing, errors that
never clear, fencing, and what /healthz says meanwhile."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from stream_od import metrics as metrics_module
from stream_od import worker as worker_module
from stream_od.config import load_settings
from stream_od.errors import EXIT_STUCK, EXIT_UNREACHABLE, FatalWorkerError
from stream_od.worker import Worker
from tests.test_worker import FakeModel


class Msg:
    def __init__(
        self,
        offset: int,
        value: bytes,
        partition: int = 0,
        key: bytes | None = None,
        error: KafkaError | None = None,
        topic: str = "in",
    ):
        self._o, self._v, self._p, self._k, self._e = offset, value, partition, key, error
        self._t = topic

    def value(self):
        return self._v

    def key(self):
        return self._k

    def headers(self):
        return None

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def timestamp(self):
        return (1, 1_700_000_000_000)

    def error(self):
        return self._e


class FakeConsumer:
    def __init__(self):
        self.seeks: list[TopicPartition] = []
        self.batches: list[list[Msg]] = []
        self.commits: list = []
        self.paused: set[tuple[str, int]] = set()

    def consume(self, num_messages, timeout):
        return self.batches.pop(0) if self.batches else []

    def seek(self, tp):
        self.seeks.append(tp)

    def consumer_group_metadata(self):
        return object()

    def subscribe(self, *a, **k):
        pass

    def close(self):
        pass

    def position(self, tps):
        return tps

    def committed(self, tps, timeout=None):
        return tps  # (offsets as given: none committed unless a test says so)

    def commit(self, offsets=None, asynchronous=True):
        self.commits.append(offsets)

    def get_watermark_offsets(self, tp, cached=False):
        return (0, -1)

    def pause(self, tps):
        self.paused |= {(tp.topic, tp.partition) for tp in tps}

    def resume(self, tps):
        self.paused -= {(tp.topic, tp.partition) for tp in tps}


class FakeProducer:
    """Fails the calls named in ``fail`` with the errors given, in order; records produced to
    a topic in ``refuse`` are reported to the delivery callback as librdkafka would."""

    def __init__(self, on_error):
        self.fail: dict[str, list[KafkaError]] = {}
        self.refuse: dict[str, KafkaError] = {}
        self.calls: list[str] = []
        self.produced: list[tuple[str, bytes]] = []
        self.on_error = on_error
        self.hang: threading.Event | None = None

    def _call(self, name):
        self.calls.append(name)
        errors = self.fail.get(name)
        if errors:
            raise KafkaException(errors.pop(0))

    def init_transactions(self, t):
        self._call("init")

    def begin_transaction(self):
        self._call("begin")

    def produce(self, topic, value=None, key=None, headers=None, timestamp=0, partition=-1):
        self._call("produce")
        self.produced.append((topic, value))
        if topic in self.refuse:
            self.on_error(self.refuse[topic], Msg(0, value or b"", key=key, topic=topic))

    def send_offsets_to_transaction(self, offsets, metadata, t):
        self._call("send_offsets")
        if self.hang is not None:  # librdkafka #5456: blocked past its timeout
            self.hang.wait()

    def commit_transaction(self, t):
        self._call("commit")

    def abort_transaction(self, t):
        self._call("abort")

    def poll(self, t):
        return 0

    def flush(self, t):
        return 0

    def purge(self, in_queue=True, in_flight=True):
        self.calls.append("purge")


@pytest.fixture
def make_worker(monkeypatch):
    def make(**settings):
        consumer = FakeConsumer()
        made = {}

        def make_producer(s, on_error):
            producer = FakeProducer(on_error)
            producer.fail = {k: list(v) for k, v in made.get("always_fail", {}).items()}
            made.setdefault("producer", producer)
            return producer

        monkeypatch.setattr(worker_module.clients, "make_consumer", lambda s: consumer)
        monkeypatch.setattr(worker_module.clients, "make_producer", make_producer)
        w = Worker(
            load_settings(**{"metrics_port": 0, "kafka_retry_timeout_s": 0.5, **settings}),
            FakeModel(),
        )
        producer = made["producer"]
        w._assigned = {("in", 0)}
        monkeypatch.setattr(w._stop, "wait", lambda s: None)  # no real backoff sleeps
        monkeypatch.setattr(w, "_missing_write", lambda: None)  # no broker to ask about ACLs
        monkeypatch.setattr(w, "_missing_outputs", lambda: None)  # nor about topics
        monkeypatch.setattr(worker_module.time, "sleep", lambda s: None)
        w.made = made  # type: ignore[attr-defined]
        w._watchdog = worker_module.CallWatchdog(watch=False)  # fake clocks must not end pytest
        w._bounded = worker_module.BoundedCaller(grace_s=0.2)
        return w, consumer, producer

    return make


def batch(n=3, start=5):
    return [Msg(start + i, orjson.dumps({"a": 1.0, "b": 20.0 * (i == 1)})) for i in range(n)]


def abortable(code=KafkaError._STATE, msg="abortable"):
    return KafkaError(code, msg, txn_requires_abort=True)


def retriable(msg="broker down"):
    return KafkaError(KafkaError._TRANSPORT, msg, retriable=True)


def test_a_clean_batch_is_one_transaction(make_worker):
    w, _, producer = make_worker()
    result = w.process(batch())
    assert (result.scored, result.alerts, result.aborted) == (3, 1, False)
    assert producer.calls == ["begin", "produce", "send_offsets", "commit"]


def test_a_record_whose_score_overflows_is_a_dead_letter_and_its_batch_goes_on(make_worker):
    """Scores are computed for the whole batch at once; one record's overflow used to raise
    for all of them, and the restarted worker died on the same batch again."""
    w, _, producer = make_worker()
    messages = batch()
    messages.insert(1, Msg(99, orjson.dumps({"a": 1e308, "b": 1e308})))  # a + b overflows
    result = w.process(messages)
    assert (result.scored, result.alerts, result.dead_letters, result.aborted) == (3, 1, 1, False)
    dead = [v for t, v in producer.produced if t == w.settings.dead_letter_topic]
    assert dead == [messages[1].value()]
    assert producer.calls[-2:] == ["send_offsets", "commit"]


def test_an_abortable_error_aborts_and_rewinds_to_the_first_offsets(make_worker):
    w, consumer, producer = make_worker()
    producer.fail["commit"] = [abortable()]
    assert w.process(batch()).aborted
    assert "abort" in producer.calls
    assert [(tp.partition, tp.offset) for tp in consumer.seeks] == [(0, 5)]
    assert w._attempts == 1
    assert not w.process(batch()).aborted and w._attempts == 0  # the retry succeeds


def test_a_batch_that_keeps_failing_stops_the_worker_naming_the_topic(make_worker):
    """No WRITE on the alerts topic: every attempt fails the same way, so after
    max_batch_attempts the worker stops with exit 3 and says what to grant."""
    w, _, producer = make_worker(max_batch_attempts=3)
    producer.refuse["stream-od.alerts"] = KafkaError(
        KafkaError.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed"
    )
    producer.fail["commit"] = [abortable()] * 10
    assert w.process(batch()).aborted and w.process(batch()).aborted
    with pytest.raises(FatalWorkerError) as info:
        w.process(batch())
    assert info.value.exit_code == EXIT_STUCK
    text = str(info.value)
    assert "3 times" in text and "'stream-od.alerts'" in text and "WRITE" in text


class HealthClock:
    """The clock stream_od.metrics reads, alone: ``monotonic()`` is ``now``, which the test
    moves on; everything else is the real time module, so the worker's own timing is untouched.
    """

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


def alive_after_each_batch(w, consumer, clock: HealthClock, n: int, seconds: float) -> list[bool]:
    """Run the loop over ``n`` batches that each take ``seconds`` on the health clock, then
    stop it; what ``/healthz`` would say after each batch."""
    consumer.batches = [batch() for _ in range(n)]
    alive: list[bool] = []
    real = w.process

    def process(messages):
        try:
            return real(messages)
        finally:
            clock.now += seconds
            alive.append(w.health.alive())
            if len(alive) == n:
                w.stop()

    w.process = process
    w.run()
    return alive


def test_health_fails_while_a_batch_keeps_failing(make_worker, monkeypatch):
    """Each failed attempt takes 20 s, under the 30 s /healthz allows a loop turn, but a loop
    that only redoes the same batch makes no progress: /healthz must fail once 30 s have passed
    since the last turn that was not a retry, so a worker stuck retrying is restarted."""
    clock = HealthClock()
    monkeypatch.setattr(metrics_module, "time", clock)
    w, consumer, producer = make_worker(max_batch_attempts=50)
    assert w.health.stale_after_s == 30.0
    producer.fail["commit"] = [abortable()] * 3
    assert alive_after_each_batch(w, consumer, clock, n=3, seconds=20.0) == [True, False, False]
    assert w._attempts == 3


def test_health_holds_while_batches_succeed(make_worker, monkeypatch):
    """The control: the same 20 s batches, committed, keep /healthz passing, so what fails it
    above is the retrying, not the clock."""
    clock = HealthClock()
    monkeypatch.setattr(metrics_module, "time", clock)
    w, consumer, _ = make_worker(max_batch_attempts=50)
    assert alive_after_each_batch(w, consumer, clock, n=3, seconds=20.0) == [True, True, True]
    assert w._attempts == 0


def test_a_send_offsets_timeout_replaces_the_producer_and_redoes_the_batch(make_worker):
    # The producer that timed out is not asked for more (librdkafka can block in it past any
    # timeout); a new one with the same transactional id is initialised, which fences it.
    w, consumer, producer = make_worker()
    producer.fail["send_offsets"] = [retriable()]
    assert w.process(batch()).aborted
    assert w.producer is not producer and producer.calls[-1] == "purge"
    assert "abort" not in producer.calls and w.producer.calls == ["init"]
    assert w._attempts == 0 and consumer.seeks  # an outage is no stuck batch
    assert not w.process(batch()).aborted and w.producer.calls[-1] == "commit"
    assert w.metrics.producer_renewals._value.get() == 1


def test_a_send_offsets_blocked_past_its_timeout_is_abandoned_and_the_batch_redone(
    make_worker, monkeypatch
):
    # The call never returns (librdkafka #5456): the worker stops waiting for it, replaces the
    # producer (whose init_transactions fences the stuck one) and goes on, without a restart.
    monkeypatch.setattr(worker_module, "TXN_CALL_S", 0.0)
    w, consumer, producer = make_worker()
    producer.hang = threading.Event()
    try:
        assert w.process(batch()).aborted
        assert w.producer is not producer and producer.calls[-1] == "purge"
        assert w.producer.calls == ["init"] and consumer.seeks
        assert not w.process(batch()).aborted and w.producer.calls[-1] == "commit"
        assert w.metrics.transaction_aborts.labels("_timed_out")._value.get() == 1
    finally:
        producer.hang.set()


def test_calls_still_blocked_after_replacing_producers_stop_the_worker_with_exit_4(
    make_worker, monkeypatch
):
    monkeypatch.setattr(worker_module, "TXN_CALL_S", 0.0)
    # Each abandoned call waits out its 0.2 s of grace on the real clock: with the outage bound
    # at the fixture's 0.5 s, a loaded machine reached that bound (exit 4, "batches kept
    # failing") before the third blocked call, which is what this test is about.
    w, _, producer = make_worker(kafka_retry_timeout_s=60.0)
    hang = threading.Event()
    producer.hang = hang
    real = worker_module.clients.make_producer

    def hanging(s, on_error):
        made = real(s, on_error)
        made.hang = hang
        return made

    monkeypatch.setattr(worker_module.clients, "make_producer", hanging)
    try:
        for _ in range(w._bounded.max_stuck - 1):
            assert w.process(batch()).aborted
        with pytest.raises(FatalWorkerError) as info:
            w.process(batch())
        assert info.value.exit_code == EXIT_UNREACHABLE and "wedged" in str(info.value)
    finally:
        hang.set()


def test_records_timed_out_in_an_outage_also_replace_the_producer(make_worker):
    # The broker gone mid-batch: the records time out, and the commit fails with an abortable
    # error; the producer's coordinator may be gone for good, so it is replaced here too.
    w, consumer, producer = make_worker()
    producer.refuse["stream-od.alerts"] = KafkaError(KafkaError._MSG_TIMED_OUT, "Message timed out")
    producer.fail["commit"] = [abortable()]
    many = [Msg(5 + i, orjson.dumps({"a": 1.0, "b": 20.0})) for i in range(3)]
    assert w.process(many).aborted
    assert w.producer is not producer and "abort" not in producer.calls
    assert w._attempts == 0 and consumer.seeks


def test_batches_lost_to_an_outage_past_the_bound_stop_the_worker_with_exit_4(
    make_worker, monkeypatch
):
    w, _, producer = make_worker()
    producer.fail["send_offsets"] = [retriable()]
    w.made["always_fail"] = {"send_offsets": [retriable()]}
    clock = itertools.count(0, 0.01)
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(FatalWorkerError) as info:
        for _ in range(1_000):
            w.process(batch())
    assert info.value.exit_code == EXIT_UNREACHABLE and "brokers" in str(info.value)


def test_an_outage_that_is_a_deleted_output_topic_is_named_when_the_wait_ends(
    make_worker, monkeypatch
):
    """Records for a deleted topic can time out like records for brokers that are away: once
    the wait is over, the brokers are asked, and the missing topic is what the worker names
    (exit 3: it will not clear by waiting)."""
    w, _, producer = make_worker()
    w.made["always_fail"] = {"send_offsets": [retriable()]}
    producer.fail["send_offsets"] = [retriable()]
    gone = "topic 'stream-od.scores' does not exist (STREAM_OD_SCORES_TOPIC): create it"
    monkeypatch.setattr(w, "_missing_outputs", lambda: gone)
    clock = itertools.count(0, 0.01)
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(FatalWorkerError) as info:
        for _ in range(1_000):
            w.process(batch())
    assert info.value.exit_code == EXIT_STUCK and gone in str(info.value)
    assert "brokers" not in str(info.value)


def test_the_watchdog_ends_a_call_blocked_past_its_timeout_and_only_that():
    exits: list[int] = []
    dog = worker_module.CallWatchdog(grace_s=5, exit=exits.append, watch=False)
    dog._current = ("send_offsets_to_transaction", 0.0, 35.0)  # armed at 0 s for 30 s + 5 s
    assert not dog.check(now=34.0) and not exits
    assert dog.check(now=36.0) and exits == [EXIT_UNREACHABLE]
    dog._current = None
    assert not dog.check(now=1e9)  # nothing in flight, nothing to end


def test_an_outage_past_the_bound_stops_the_worker_with_exit_4(make_worker, monkeypatch):
    w, _, producer = make_worker()
    producer.fail["commit"] = [retriable()] * 10_000
    clock = iter(range(0, 10_000))
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(FatalWorkerError) as info:
        w.process(batch())
    assert info.value.exit_code == EXIT_UNREACHABLE and "commit_transaction" in str(info.value)


def test_fenced_stops_without_writing_more(make_worker):
    w, _, producer = make_worker()
    producer.fail["commit"] = [KafkaError(KafkaError._FENCED, "fenced", fatal=True)]
    with pytest.raises(FatalWorkerError, match="fenced"):
        w.process(batch())
    assert "abort" not in producer.calls


def test_a_fatal_transaction_error_from_a_revoked_acl_names_the_topic(make_worker, monkeypatch):
    """librdkafka can make a refused partition a *fatal* "invalid state" of the transaction;
    the worker then asks the broker what is missing and stops with exit 3 saying so."""
    w, _, producer = make_worker()
    producer.fail["commit"] = [
        KafkaError(KafkaError.INVALID_TXN_STATE, "Failed to end transaction", fatal=True)
    ]
    missing = "User:w may not WRITE topic 'stream-od.alerts': grant WRITE on Topic:stream-od.alerts"
    monkeypatch.setattr(w, "_missing_write", lambda: missing)
    with pytest.raises(FatalWorkerError) as info:
        w.process(batch())
    assert info.value.exit_code == EXIT_STUCK
    assert "failed fatally" in str(info.value) and missing in str(info.value)


def test_group_authorization_failure_stops_the_consumer_at_once(make_worker):
    w, _, _ = make_worker()
    err = KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED, "Group authorization failed")
    with pytest.raises(FatalWorkerError) as info:
        w._drop_errors([Msg(0, b"", error=err)])
    assert info.value.exit_code == EXIT_STUCK and "READ on its consumer group" in str(info.value)


def test_a_transient_consumer_error_is_logged_and_skipped(make_worker):
    w, _, _ = make_worker()
    err = KafkaError(KafkaError._TRANSPORT, "broker down")
    good = Msg(1, b"{}")
    assert w._drop_errors([Msg(0, b"", error=err), good]) == [good]


def test_at_least_once_refuses_to_commit_past_an_undelivered_record(make_worker):
    w, consumer, producer = make_worker(processing_guarantee="at_least_once")
    assert not w.process(batch()).aborted and len(consumer.commits) == 1
    producer.refuse["stream-od.alerts"] = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large")
    with pytest.raises(FatalWorkerError, match="not delivered.*max.message.bytes"):
        w.process(batch())
    assert len(consumer.commits) == 1  # the offsets of the failed batch were not committed


def windows_schema():
    from stream_od.schema import load_schema

    base = load_schema("zeek-conn-windows")
    return base.with_vocabularies({f.name: () for f in base.fields if f.kind == "categorical"})


def model(schema):
    """A model of ``schema`` that scores every record 0."""
    m = FakeModel()
    m.schema, m.feature_names = schema, schema.feature_names
    m.score_and_contributions = lambda X, check_finite=True: (np.zeros(len(X)), np.zeros(X.shape))
    return m


def test_a_model_with_other_windows_waits_paused_until_the_loop_has_built_them(
    make_worker, monkeypatch
):
    """A swap to other windows does not build them in place (every partition's at once, the
    group unserved meanwhile): every partition waits paused, queued from the batch's first
    offset or its own position, the batch is read again after, and the loop builds them one
    partition at a time, serving the group between chunks."""
    from dataclasses import replace

    schema = windows_schema()
    w, consumer, producer = make_worker()
    w._assigned = {("in", 0), ("in", 1)}
    consumer.position = lambda tps: [TopicPartition(t.topic, t.partition, 40) for t in tps]
    rebuilt: list[tuple[int, int, bool]] = []

    def restore(tps, between=None):
        rebuilt.extend((tp.partition, tp.offset, between is not None) for tp in tps)
        return True

    monkeypatch.setattr(w, "_restore_windows", restore)
    w.swap_model(model(schema))
    assert w.process(batch()) is None  # not scored: it waits for the windows
    assert not producer.calls.count("commit") and rebuilt == []
    assert consumer.paused == {("in", 0), ("in", 1)}
    assert [(tp.partition, tp.offset) for tp in consumer.seeks] == [(0, 5)]  # read again
    assert [(tp.partition, tp.offset) for tp in w._rebuilds] == [(0, 5), (1, 40)]
    w._rebuild_next()
    w._rebuild_next()
    assert rebuilt == [(0, 5, True), (1, 40, True)] and consumer.paused == set()
    assert not w.process(batch()).aborted  # now scored, with the windows whole
    w.swap_model(model(schema))  # the same windows: kept as they are, nothing rebuilt
    assert not w.process(batch(start=8)).aborted
    assert w._rebuilds == [] and len(rebuilt) == 2
    w.swap_model(model(replace(schema, windows=replace(schema.windows, time_s=5.0))))
    assert w.process(batch(start=11)) is None
    assert [(tp.partition, tp.offset) for tp in w._rebuilds] == [(0, 11), (1, 40)]


def test_a_swap_to_other_windows_rebuilds_an_idle_partition_from_its_committed_offset(
    make_worker, monkeypatch
):
    """A partition not read from since it was assigned has no position (librdkafka says
    OFFSET_INVALID): its windows are rebuilt from its committed offset, not left empty; and a
    partition already waiting for its windows keeps its place."""
    w, consumer, _ = make_worker()
    w._assigned = {("in", 0), ("in", 1), ("in", 2)}
    monkeypatch.setattr(w, "_restore_windows", lambda tps, between=None: True)
    consumer.position = lambda tps: [TopicPartition(t.topic, t.partition) for t in tps]  # none
    consumer.committed = lambda tps, timeout=None: [
        TopicPartition(t.topic, t.partition, 100 + t.partition) for t in tps
    ]
    w._queue_rebuilds([TopicPartition("in", 2, 7)])  # taken over, still waiting
    w.swap_model(model(windows_schema()))
    assert w.process(batch()) is None
    assert sorted((tp.partition, tp.offset) for tp in w._rebuilds) == [(0, 5), (1, 101), (2, 7)]


def test_a_swap_to_a_model_without_windows_lets_the_waiting_partitions_flow(
    make_worker, monkeypatch
):
    """Partitions waiting for the last model's windows wait for nothing once the new model has
    none (their rebuild would read windows the model does not have)."""
    w, consumer, _ = make_worker()
    w._assigned = {("in", 0), ("in", 1)}
    w.swap_model(model(windows_schema()))
    w.process(batch())  # now windowed: every partition waits
    assert consumer.paused == {("in", 0), ("in", 1)} and w._rebuilds
    w.swap_model(FakeModel())
    assert not w.process(batch()).aborted  # scored by the new model at once
    assert consumer.paused == set() and w._rebuilds == []


def test_an_aborted_batch_waits_paused_until_the_loop_has_rebuilt_its_windows(
    make_worker, monkeypatch
):
    """The windows took in the aborted batch: its partition is paused, and the loop rebuilds
    them up to the batch's first offset (serving the group between chunks), then resumes it;
    the other partitions flow meanwhile, and are paused only while the rebuild runs."""
    w, consumer, producer = make_worker()
    w._assigned = {("in", 0), ("in", 1)}
    rebuilds: list = []

    def restore(tps, between=None):
        rebuilds.append(([(tp.partition, tp.offset) for tp in tps], between is not None))
        rebuilds.append(set(consumer.paused))  # what was paused while it ran
        return True

    monkeypatch.setattr(w, "_restore_windows", restore)
    w.swap_model(model(windows_schema()))
    w.process(batch(start=1))  # the new model's windows built once, before its first batch
    w._rebuild_next()
    w._rebuild_next()
    rebuilds.clear()
    producer.fail["commit"] = [abortable()]
    assert w.process(batch()).aborted
    assert consumer.paused == {("in", 0)} and not rebuilds  # queued, not rebuilt in place
    w._rebuild_next()
    assert rebuilds == [([(0, 5)], True), {("in", 0), ("in", 1)}]
    assert consumer.paused == set() and w._rebuilds == []
    assert not w.process(batch()).aborted  # redone with its windows whole


def test_an_aborted_batch_under_suppression_is_undone_and_redone_the_same(make_worker):
    """Suppression state changed by a batch whose transaction aborts is put back, so the redo
    emits the same alert and changelog records, and counts each held-back alert once."""
    w, _, producer = make_worker(suppress_window_s=60, suppress_by=["a"])
    msgs = [Msg(5 + i, orjson.dumps({"a": 1.0, "b": 20.0})) for i in range(4)]  # all alert
    producer.fail["commit"] = [abortable()]
    assert w.process(msgs).aborted
    aborted, producer.produced = list(producer.produced), []
    result = w.process(msgs)
    assert not result.aborted and result.alerts == 1  # the window's first; 3 held back

    def same(records):  # the detection time is the wall clock's; all else must be equal
        return [
            (t, {**orjson.loads(v), "detected_at_ms": 0} if t == "stream-od.alerts" else v)
            for t, v in records
        ]

    assert same(producer.produced) == same(aborted)
    topics = [t for t, _ in producer.produced]
    assert topics.count("stream-od.alerts") == 1
    assert topics.count("stream-od.alerts-suppression") == 2  # the window, the partition's clock
    (state,) = w.volume.partitions.values()
    (window,) = state.windows.values()
    assert window.count == 3
    assert w.metrics.registry.get_sample_value("stream_od_alerts_suppressed_total") == 3


def test_the_batch_wait_counts_from_when_the_last_batch_was_taken(make_worker, monkeypatch):
    """``max_batch_wait_ms`` is a period: the records that arrived while a batch was processed
    have waited already, so the next consume waits only the rest of it; after an empty one, the
    whole period again."""
    w, consumer, _ = make_worker(max_batch_wait_ms=25)
    clock = [100.0]
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: clock[0])
    timeouts: list[float] = []
    batches = [batch(), [], batch(start=8), batch(start=11)]

    def consume(num_messages, timeout):
        timeouts.append(timeout)
        if not batches:
            w.stop()
            return []
        return batches.pop(0)

    def process(messages):  # 10 ms of work per batch, 40 ms for the last one
        clock[0] += 0.040 if messages[0].offset() == 11 else 0.010

    consumer.consume = consume
    monkeypatch.setattr(w, "process", process)
    w.run()
    assert timeouts == pytest.approx([0.025, 0.015, 0.025, 0.015, 0.0])


def idle_worker(make_worker):
    """A worker whose position on ``in`` [0] moved past its last commit with no record (a
    transaction marker), so that the idle loop commits it."""
    w, consumer, producer = make_worker()
    consumer.position = lambda tps: [TopicPartition(tp.topic, tp.partition, 8) for tp in tps]
    w._committed[("in", 0)] = 5
    return w, producer


def test_a_failed_idle_commit_is_aborted_and_retried_when_next_idle(make_worker):
    w, producer = idle_worker(make_worker)
    producer.fail["commit"] = [abortable()]
    w._commit_idle_positions()
    assert producer.calls[-1] == "abort" and w.producer is producer
    assert w._committed[("in", 0)] == 5
    w._commit_idle_positions()
    assert producer.calls[-1] == "commit" and w._committed[("in", 0)] == 8


@pytest.mark.parametrize("how", ["brokers away", "abort refused"])
def test_an_idle_commit_whose_producer_cannot_abort_gets_a_new_producer(make_worker, how):
    """The abort was outside the watchdog and its error dropped: a producer stuck on a lost
    coordinator could hang the idle loop, and one left mid-transaction failed the next batch's
    begin_transaction for a reason the log no longer held."""
    w, producer = idle_worker(make_worker)
    if how == "brokers away":
        producer.fail["commit"] = [KafkaError(KafkaError._TIMED_OUT, "timed out", retriable=True)]
    else:
        producer.fail["commit"] = [abortable()]
        producer.fail["abort"] = [KafkaError(KafkaError._STATE, "cannot abort")]
    w._commit_idle_positions()
    assert w.producer is not producer and "init" in w.producer.calls
    assert ("abort" in producer.calls) == (how == "abort refused")
    assert w.metrics.producer_renewals._value.get() == 1


def test_a_config_error_found_while_running_exits_2_with_its_message(monkeypatch, capsys):
    """A suppression changelog the worker can neither find nor create is known only once it
    runs; it ended in a traceback (exit 1)."""
    import argparse

    from stream_od import worker_cli
    from stream_od.errors import ConfigError

    class Running:
        def run(self):
            raise ConfigError("the suppression changelog topic 'x' does not exist and could not")

        def stop(self):
            pass

    class Stoppable:
        def stop(self):
            pass

    monkeypatch.setattr(worker_cli, "_start", lambda s: (Running(), Stoppable(), None))
    monkeypatch.setattr(worker_cli.signal, "signal", lambda *a: None)
    args = argparse.Namespace(config=None, artifact="unused")
    assert worker_cli.run(args) == worker_cli.EXIT_CONFIG == 2


@pytest.mark.parametrize("fatal", [True, False])
def test_a_transaction_timeout_the_brokers_refuse_stops_the_worker_naming_both_settings(
    make_worker, fatal
):
    """The brokers cap transactions at transaction.max.timeout.ms: above it, init_transactions
    fails at once, and the worker stops saying which two settings disagree (not a traceback)."""
    w, _, producer = make_worker()
    producer.fail["init"] = [
        KafkaError(KafkaError.INVALID_TRANSACTION_TIMEOUT, "timeout too large", fatal=fatal)
    ]
    with pytest.raises(FatalWorkerError) as info:
        w.run()
    assert "STREAM_OD_TRANSACTION_TIMEOUT_MS" in str(info.value)
    assert "transaction.max.timeout.ms" in str(info.value)
