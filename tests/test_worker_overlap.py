"""Overlapped commits (``overlap_commits``, the default, when batches are full) with fake
clients (pure logic; the integration tests run them on the real broker): a batch is written
only after the batch before committed, a failed commit rewinds both batches to the first one's
offsets, and a rebalance waits for the commit in flight and seeks only once ``consume`` has
returned."""

from __future__ import annotations

import threading

import orjson
from confluent_kafka import TopicPartition

from tests.test_worker_failures import Msg, abortable, batch, make_worker  # noqa: F401


def overlapped(make_worker):  # noqa: F811
    """A worker whose batches of 3 are full: it is behind, so its commits overlap."""
    w, consumer, producer = make_worker(overlap_commits=True, max_batch_records=3)
    assert w._committer is not None
    return w, consumer, producer


def test_a_batch_that_is_not_full_commits_before_the_call_returns(make_worker):  # noqa: F811
    w, _, producer = make_worker(overlap_commits=True, max_batch_records=4)
    result = w.process(batch(start=5))
    assert result is not None and result.consumed == 3 and w._in_flight is None
    assert producer.calls == ["begin", "produce", "send_offsets", "commit"]


def test_the_next_batch_is_written_only_after_the_last_one_committed(make_worker):  # noqa: F811
    w, _, producer = overlapped(make_worker)
    assert w.process(batch(start=5)) is None  # nothing committed before it
    assert w.process(batch(start=8)).consumed == 3  # the first batch's result
    last = w._settle()
    assert last is not None and not last.aborted and last.consumed == 3
    one = ["begin", "produce", "send_offsets", "commit"]
    assert producer.calls == one + one
    assert w._committed == {("in", 0): 11}
    assert w.metrics.batches._value.get() == 2


def test_the_commit_runs_on_another_thread_while_the_next_batch_is_scored(
    make_worker,  # noqa: F811
):
    w, _, producer = overlapped(make_worker)
    release, threads = threading.Event(), []
    real_commit = producer.commit_transaction

    def slow_commit(t):
        threads.append(threading.current_thread().name)
        assert release.wait(5)
        real_commit(t)

    producer.commit_transaction = slow_commit
    w.process(batch(start=5))
    scored = w._score(batch(start=8))  # the first commit is still held
    assert w._in_flight is not None and not w._in_flight.future.done()
    assert len(scored.batch.rows) == 3
    release.set()
    assert not w._settle().aborted
    assert threads and threads[0].startswith("stream-od-commit")


def test_a_failed_commit_rewinds_it_and_the_batch_read_after_it(make_worker):  # noqa: F811
    w, consumer, producer = overlapped(make_worker)
    w._assigned = {("in", 0), ("in", 1)}
    producer.fail["commit"] = [abortable()]
    first = batch(start=5)
    second = [*batch(start=8), Msg(40, orjson.dumps({"a": 1.0, "b": 0.0}), partition=1)]
    assert w.process(first) is None
    result = w.process(second)
    assert result is not None and result.aborted and result.consumed == 7
    # partition 0 back to the first batch's first offset (not the second's), 1 to its own
    assert sorted((tp.partition, tp.offset) for tp in consumer.seeks) == [(0, 5), (1, 40)]
    assert producer.calls.count("begin") == 1 and "abort" in producer.calls  # second not written
    assert w._in_flight is None and w._attempts == 1 and w._committed == {}


def test_a_rebalance_waits_for_the_commit_and_seeks_after_consume_returns(
    make_worker,  # noqa: F811
):
    """The commit in flight fails inside a revoke callback: seeking there could be overtaken by
    the records consume is returning, so the loop seeks once it has returned, and drops them."""
    w, consumer, producer = overlapped(make_worker)
    producer.fail["commit"] = [abortable()]
    batches = [batch(start=5), batch(start=8)]

    def consume(num_messages, timeout):
        if len(batches) == 1:  # the second consume: a rebalance, then records
            w._on_revoke(consumer, [TopicPartition("in", 1)])
            assert consumer.seeks == [] and w._in_flight is None
            assert w._rewind_after is not None
        if not batches:
            w.stop()
            return []
        return batches.pop(0)

    consumer.consume = consume
    w.run()
    assert [(tp.partition, tp.offset) for tp in consumer.seeks] == [(0, 5)]
    assert producer.calls.count("begin") == 1  # the batch that came with the rebalance dropped
    assert w._rewind_after is None and w._committed == {}


def test_a_stop_commits_the_batch_in_flight(make_worker):  # noqa: F811
    w, consumer, producer = overlapped(make_worker)

    def consume(num_messages, timeout):  # the stop comes while this batch is processed
        w.stop()
        return batch(start=5)

    consumer.consume = consume
    w.run()
    assert w._in_flight is None and producer.calls[-1] == "commit"
    assert w._committed == {("in", 0): 8} and w.metrics.batches._value.get() == 1


def test_a_swap_to_other_windows_while_a_commit_fails_rebuilds_from_the_rewound_offsets(
    make_worker,  # noqa: F811
    monkeypatch,
):
    """The batch in flight fails to commit as a model with other windows arrives: both batches
    are rewound, and every partition waits for its windows from where it is read again: the
    failed batch's first offset, or its own position."""
    from tests.test_worker_failures import model, windows_schema

    w, consumer, producer = overlapped(make_worker)
    w._assigned = {("in", 0), ("in", 1), ("in", 2)}
    consumer.position = lambda tps: [TopicPartition(t.topic, t.partition, 70) for t in tps]
    monkeypatch.setattr(w, "_restore_windows", lambda tps, between=None: True)
    producer.fail["commit"] = [abortable()]
    assert w.process(batch(start=5)) is None  # its commit in flight
    w.swap_model(model(windows_schema()))
    second = [*batch(start=8), Msg(40, orjson.dumps({"a": 1.0, "b": 0.0}), partition=1)]
    result = w.process(second)
    assert result is not None and result.aborted
    assert sorted((tp.partition, tp.offset) for tp in w._rebuilds) == [(0, 5), (1, 40), (2, 70)]
    assert consumer.paused == {("in", 0), ("in", 1), ("in", 2)}
    assert w.metrics.records_consumed._value.get() == 3  # the second batch was not scored
